"""The API's only parser: strict JSON with a size limit.

Stricter than DRF's JSONParser because capture moves money: a body that could be
read two ways (duplicate keys), a body too deep to walk, NaN/Infinity or invalid
UTF-8 is refused with 400 parse_error rather than guessed at."""

import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from .exceptions import RequestTooLarge


def _reject_duplicate_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ParseError(f"JSON parse error - duplicate key {key!r}.")
        result[key] = value
    return result


def _reject_constant(name):
    raise ParseError(f"JSON parse error - {name} is not valid JSON.")


def loads_strict(raw: bytes):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("JSON parse error - the body is not valid UTF-8.") from exc
    try:
        return json.loads(
            text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
        )
    except RecursionError as exc:
        raise ParseError("JSON parse error - the body is nested too deeply.") from exc
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}") from exc


class StrictJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        if request is not None:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > limit:
                raise RequestTooLarge()
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise RequestTooLarge()
        return loads_strict(raw)
