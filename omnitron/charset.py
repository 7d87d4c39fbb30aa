"""A request is read as UTF-8 whatever `charset` its Content-Type names: its query
string, and a form's body, as the API reads JSON (omnitron/api/parsers.py).

Django reads both with the named charset whenever Python has a codec of that name,
which let a header break requests at any URL (found by an outside test):
- a codec that is no text encoding (rot13, base64, hex, zlib, bz2, uu_codec, quopri),
  or one that fails as no decoder should (punycode, undefined), raised in Django's
  request itself, outside every error page: with any query string (`/healthz?x=1`
  too), gunicorn's bare 500, and no line in the request log;
- utf-7 reads `%2B2AA-` as a lone surrogate, which the admin's search, filters and
  autocomplete handed to the database: 500;
- ascii or cp1252 could not write back what they had read (U+FFFD for a byte they
  do not hold) in the event feed's `next` link: 500;
- a parameter in RFC 2231's form (`name*=codec''value`) naming no codec, or one that
  fails on its value (idna, punycode, undefined), raised in Django's reading of the
  Content-Type, at any URL too: such a Content-Type is taken as its media type alone.
Browsers send forms in UTF-8 and name no charset; a form in another is read as UTF-8,
with Django's fallbacks for what is not (raw bytes as Latin-1, escaped ones as U+FFFD)."""

import codecs

from django.utils.http import parse_header_parameters


def utf8_only(content_type: str) -> str:
    """The Content-Type without a `charset` other than UTF-8 (its other parameters, a
    multipart boundary, kept), or its media type alone if Django cannot read its
    parameters."""
    try:
        media_type, params = parse_header_parameters(content_type)
    except ValueError:  # an RFC 2231 parameter naming no codec, or failing on its value
        return content_type.partition(";")[0].strip()
    if is_utf8(params.get("charset", "utf-8")):
        return content_type
    kept = "".join(
        f"; {name}={quoted(value)}" for name, value in params.items() if name != "charset"
    )
    return media_type + kept


def quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name == "utf-8"
    except (LookupError, ValueError):  # no such codec; a name with a NUL
        return False


class Utf8RequestMiddleware:
    """WSGI middleware: drops any other charset from CONTENT_TYPE, and parameters
    Django cannot read, before Django sees the request."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        content_type = environ.get("CONTENT_TYPE", "")
        if ";" in content_type:  # (without parameters Django reads no charset)
            environ["CONTENT_TYPE"] = utf8_only(content_type)
        return self.app(environ, start_response)
