"""Numbers and on/off flags from the environment, read the same way by the settings
and gunicorn.conf.py (which runs before Django): ASCII digits (and a point, for a
float); a flag's true/false, 1/0, yes/no or on/off; set but empty is the default;
anything else, or a number outside its range, is refused naming the variable. The
least value of a setting is the one below which it turns off what it protects (a
lock_timeout or a gunicorn timeout of 0 is none at all), and its most the one past
which it fails later (a lock_timeout past PostgreSQL's integers refused every
connection). `settings_or_exit` makes a setting refused at start one line, for
manage.py and the WSGI entry point."""

import os
import re
import sys

# At most 18 digits: every setting's range is far below, and Python refuses to read an
# integer of over 4,300 digits (a message naming no variable) or reads 400 nines as inf.
PATTERNS = {int: re.compile(r"[0-9]{1,18}"), float: re.compile(r"[0-9]{1,18}(\.[0-9]{1,18})?")}


def env_number(name: str, default, *, minimum, maximum=None, cast=int):
    """The variable's number, or ValueError with a message that names it."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    return number(name, text, minimum=minimum, maximum=maximum, cast=cast)


def number(name: str, text: str, *, minimum, maximum=None, cast=int):
    """`text` as a number from `minimum` to `maximum`, or ValueError naming `name`."""
    if not PATTERNS[cast].fullmatch(text) or cast(text) < minimum:
        raise ValueError(f"{name}: {text!r} is not a number of at least {minimum}.")
    value = cast(text)
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: {text!r} is more than {maximum}.")
    return value


FLAGS = {"true": True, "1": True, "yes": True, "on": True,
         "false": False, "0": False, "no": False, "off": False}  # fmt: skip


def env_flag(name: str, default: bool) -> bool:
    """The variable as on or off, or ValueError naming it: a value read as "off"
    whatever it said (`WEBHOOK_REQUIRE_HTTPS=enabled`) turned a safeguard off."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return FLAGS[text.lower()]
    except KeyError:
        message = f"{name}: {text[:40]!r} is not one of true/false, 1/0, yes/no, on/off."
        raise ValueError(message) from None


def settings_or_exit(program: str) -> None:
    """Read Django's settings now: a variable they refuse ends `program` with one line
    naming it (ImproperlyConfigured's message), not a traceback."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018  reading a setting loads them all
    except ImproperlyConfigured as exc:
        sys.exit(f"{program}: {exc}")
