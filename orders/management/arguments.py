"""Argument types the management commands share."""

import argparse
import re

from omnitron.limits import MAX_INTEGER


def channel_id(value: str) -> int:
    """A channel id as imports take them: 1 to 2**31 - 1, in ASCII digits."""
    number = int(value) if re.fullmatch(r"\s*[0-9]+\s*", value) else 0
    if not 1 <= number <= MAX_INTEGER:
        raise argparse.ArgumentTypeError(f"not a channel id (1 to {MAX_INTEGER}): {value!r}")
    return number
