"""The API's only parser: DRF's JSONParser, stricter and exact.

Stricter because capture moves money: a body that could be read two ways
(duplicate keys), a body too deep to walk, NaN/Infinity, invalid UTF-8 or a body
shorter than its Content-Length (the client's connection ended mid-body) is refused
with 400 parse_error rather than guessed at. A `charset` parameter is ignored: JSON
is UTF-8 (RFC 8259 defines no charset for application/json), and decoding with any
codec a client names let one (punycode) hold a worker for minutes. Exact because
numbers keep every digit (omnitron/exactjson.py)."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

from omnitron import exactjson
from omnitron.limits import MAX_JSON_VALUES

from .exceptions import BODY_ENDED_EARLY, UnsupportedContentEncoding
from .middleware import declared_length


class StrictJSONParser(JSONParser):
    """DRF hands a JSON parser the body already read: Django refuses one over
    DATA_UPLOAD_MAX_MEMORY_SIZE (the API_MAX_BODY_BYTES variable) before reading it, and the
    exception handler answers that 413 request_too_large."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "") if request else ""
        if encoding.strip().lower() not in ("", "identity"):
            raise UnsupportedContentEncoding(encoding=encoding[:64])
        body = stream.read()
        if request is not None and len(body) < declared_length(request):
            raise ParseError(BODY_ENDED_EARLY)
        # Counted on the bytes, before any is parsed: each value costs microseconds in
        # every pass (parsing, validating, writing), and 4 MB of `[],` are 1.3 million
        # values, seconds of a worker's CPU. Commas inside strings count too: an
        # overcount, for bodies far from the limit.
        values = body.count(b",") + body.count(b"[") + body.count(b"{")
        if values > MAX_JSON_VALUES:
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
