"""The API's only parser: DRF's JSONParser, stricter and exact.

Stricter because capture moves money: a body that could be read two ways
(duplicate keys), a body too deep to walk, NaN/Infinity, invalid UTF-8 or a body
shorter than its Content-Length (the client's connection ended mid-body) is refused
with 400 parse_error rather than guessed at. A `charset` parameter is ignored: JSON
is UTF-8 (RFC 8259 defines no charset for application/json), and decoding with any
codec a client names let one (punycode) hold a worker for minutes. Exact because
numbers keep every digit (omnitron/exactjson.py)."""

import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

from omnitron import exactjson
from omnitron.limits import MAX_JSON_VALUES

from .exceptions import BODY_ENDED_EARLY, UnsupportedContentEncoding
from .middleware import declared_length

# A JSON string, escapes and all, or what is left of one that does not end: each quote
# starts a match that succeeds, and the possessive loops never go back, so stripping is
# linear. (A pattern that could fail on an unended string scanned to the end from each
# of its escaped quotes: 400 KB of `\"` held a worker past gunicorn's timeout.)
JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)


def _separators(body: bytes) -> int:
    return body.count(b",") + body.count(b"[") + body.count(b"{")


def value_count(body: bytes) -> int:
    """About how many values a JSON body holds, counted on its bytes before any is
    parsed: its commas, objects and arrays outside strings. Each value costs
    microseconds in every pass (parsing, validating, writing), and 4 MB of `[],` are
    1.3 million values, seconds of a worker's CPU. Counted first with the strings'
    contents too (a bytes count, quick), and again without them only past the limit:
    a few attributes full of commas were refused as too many values."""
    count = _separators(body)
    if count > MAX_JSON_VALUES:
        count = _separators(JSON_STRING.sub(b'""', body))
    return count


def is_identity_encoded(request) -> bool:
    """Whether the body comes as sent, not compressed (no Content-Encoding, or
    `identity`): the parser refuses any other with 415 unsupported_content_encoding."""
    return request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower() in ("", "identity")


def is_json(request) -> bool:
    """Whether the body is declared JSON (`application/json`, parameters aside)."""
    return request.content_type.partition(";")[0].strip().lower() == "application/json"


class StrictJSONParser(JSONParser):
    """DRF hands a JSON parser the body already read: Django refuses one over
    DATA_UPLOAD_MAX_MEMORY_SIZE (the API_MAX_BODY_BYTES variable) before reading it, and the
    exception handler answers that 413 request_too_large."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        if request is not None and not is_identity_encoded(request):
            encoding = request.META["HTTP_CONTENT_ENCODING"]
            raise UnsupportedContentEncoding(encoding=encoding[:64])
        body = stream.read()
        if request is not None and len(body) < declared_length(request):
            raise ParseError(BODY_ENDED_EARLY)
        if value_count(body) > MAX_JSON_VALUES:
            raise ParseError(f"JSON parse error - more than {MAX_JSON_VALUES:,} values.")
        try:
            return exactjson.loads(
                body.decode("utf-8"),
                object_pairs_hook=exactjson.without_duplicate_keys,
                parse_constant=strict_constant,
            )
        except RecursionError as exc:
            raise ParseError("JSON parse error - the body is nested too deeply.") from exc
        except ValueError as exc:  # UnicodeDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from exc
