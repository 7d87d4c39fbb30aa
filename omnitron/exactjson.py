"""JSON whose numbers keep every digit.

Python's json reads 0.1000000000000000055511151231257827 as the float 0.1 and 1e400
as Infinity. Here numbers with a fraction or an exponent are decoded as Decimal and
encoded from a Decimal unchanged (simplejson's `use_decimal`), so the number a
client sends is the number PostgreSQL keeps in jsonb (a numeric, exact) and the
number the API answers. Integers stay Python ints, which are exact already, up to
the length Python converts; longer ones are Decimals too."""

import json
from collections.abc import Iterator
from decimal import Decimal

import simplejson
from rest_framework.utils.encoders import JSONEncoder as DRFJSONEncoder

from . import collector

# PostgreSQL's numeric (the numbers of jsonb): digits before and after the point.
# Digits before the point of a number the service keeps: PostgreSQL's numeric holds
# 131,072, but it answers numbers in plain notation, and Python's json reads an integer
# of at most 4,300 digits (sys.int_info.default_max_str_digits): a capture's 1e5000
# came back in the answer, the webhook and the feed as 5,001 digits no Python client
# (the standard webhooks library included) could read.
MAX_INTEGER_DIGITS = 4300
MAX_NUMERIC_FRACTION_DIGITS = 16383


# Integers written with more characters than this are decoded as LargeInteger, well
# within Python's limit of 4,300 digits for int() (a sign and leading zeros count too).
INT_CHARACTERS = 4000


class LargeInteger(Decimal):
    """A JSON integer of more than 4,000 digits: Python refuses to convert integers of
    over 4,300 (sys.int_info), and PostgreSQL answers 1e4300 as such a one. Fields
    that take an integer tell it from a number written with a fraction or an exponent
    (a Decimal), which they refuse as `invalid`."""


# DRF's messages name a value's type ("Expected a list of items but got type ..."): an
# integer, whatever its length.
LargeInteger.__name__ = LargeInteger.__qualname__ = "int"


def _integer(text: str) -> int | LargeInteger:
    return int(text) if len(text) <= INT_CHARACTERS else LargeInteger(text)


def parse_decimal(text: str) -> Decimal:
    """A JSON number with a fraction or an exponent. One whose exponent is beyond what
    Decimal holds (1e99999999999999999999999: decimal.InvalidOperation, which callers
    of a JSON decoder do not expect) is a ValueError, as any JSON the decoder refuses."""
    try:
        return Decimal(text)
    except ArithmeticError:
        raise ValueError(f"Number out of range: {text[:40]}") from None


def loads(text: str | bytes, **kwargs):
    with collector.paused():
        return json.loads(text, parse_float=parse_decimal, parse_int=_integer, **kwargs)


class DuplicateKey(ValueError):
    """A JSON object names a key twice (json keeps the last value silently)."""


def without_duplicate_keys(pairs: list[tuple]) -> dict:
    """A decoder's object_pairs_hook: the object, or DuplicateKey (a ValueError, as
    any JSON a decoder refuses) for a key given twice."""
    result = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(f"duplicate key {key!r}.")
        result[key] = value
    return result


def dumps(value, **kwargs) -> str:
    return simplejson.dumps(value, use_decimal=True, **kwargs)


def number_in_range(number: Decimal) -> bool:
    """Whether the service keeps the number: finite, at most MAX_INTEGER_DIGITS before
    the point (so that JSON clients read it back) and what PostgreSQL's numeric holds
    after it (jsonb refuses more)."""
    if not number.is_finite():
        return False
    _, digits, exponent = number.as_tuple()
    integer_digits = len(digits) + exponent
    return integer_digits <= MAX_INTEGER_DIGITS and -exponent <= MAX_NUMERIC_FRACTION_DIGITS


class ExactJSONDecoder(json.JSONDecoder):
    """For Django's JSONField(decoder=...): fractions and exponents as Decimal."""

    def __init__(self, **kwargs):
        kwargs.setdefault("parse_float", parse_decimal)
        kwargs.setdefault("parse_int", _integer)
        super().__init__(**kwargs)


class ExactJSONEncoder(DRFJSONEncoder):
    """For Django's JSONField(encoder=...) and DRF's renderer: a Decimal is written
    as its own digits, in plain notation as PostgreSQL's numeric writes it (0.0000001,
    where Python's str() writes 1E-7); other types as DRF writes them (dates, UUIDs,
    ...)."""

    def encode(self, o) -> str:
        return simplejson.dumps(
            o,
            use_decimal=False,  # simplejson's default would write str(Decimal)
            default=self._plain_decimal,
            ensure_ascii=self.ensure_ascii,
            allow_nan=self.allow_nan,
            indent=self.indent,
            separators=(self.item_separator, self.key_separator),
            sort_keys=self.sort_keys,
        )

    def _plain_decimal(self, o):
        if isinstance(o, Decimal):
            if not o.is_finite():  # as allow_nan=False refuses a float's (RawJSON would not)
                raise ValueError(f"{o} is not JSON")
            return simplejson.RawJSON(format(o, "f"))
        return self.default(o)


# For a model's JSONField: models.JSONField(default=dict, **EXACT_JSON).
EXACT_JSON = {"encoder": ExactJSONEncoder, "decoder": ExactJSONDecoder}


def walk(value) -> Iterator[tuple[object, int]]:
    """Every value inside `value`, itself first (depth 0), with its depth, in document
    order (an object's key, then its value). Without recursion: any depth the decoder
    produced is walked, and a caller that stops early builds nothing past that."""
    pending = [(value, 0)]
    while pending:
        part, depth = pending.pop()
        yield part, depth
        if isinstance(part, dict):
            children = [child for pair in part.items() for child in pair]
        elif isinstance(part, list):
            children = part
        else:
            continue
        pending.extend((child, depth + 1) for child in reversed(children))


def text_refusal(value: str) -> tuple[str, int] | None:
    """Why PostgreSQL would refuse a text (in jsonb or a column): ("nul", 0) for a NUL
    character, ("surrogate", its code point) for a lone surrogate; None if neither."""
    if "\x00" in value:
        return "nul", 0
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return "surrogate", ord(value[exc.start])
    return None


def jsonb_refusal(value, *, max_depth: int | None = None) -> str | None:
    """Why PostgreSQL's jsonb would refuse a decoded JSON value (a NUL character, a lone
    surrogate, a number that is not finite or beyond numeric's range), or one with an
    array or object nested `max_depth` deep; None if neither."""
    for part, depth in walk(value):
        if isinstance(part, str):
            if refusal := text_refusal(part):
                kind, code_point = refusal
                if kind == "nul":
                    return "A NUL character (\\u0000) cannot be stored."
                return f"A lone surrogate (U+{code_point:04X}) cannot be stored."
        elif isinstance(part, float | Decimal):
            number = Decimal(part) if isinstance(part, float) else part
            if not number_in_range(number):
                return (
                    f"Numbers must be finite, with at most {MAX_INTEGER_DIGITS} digits before "
                    f"the point and {MAX_NUMERIC_FRACTION_DIGITS} after it."
                )
        elif isinstance(part, dict | list) and max_depth is not None and depth >= max_depth:
            return f"The value is nested more than {max_depth} deep."
    return None
