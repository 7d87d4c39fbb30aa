"""The codes of login besides those of omnitron/api/error_codes.py."""

from rest_framework import status

from omnitron.api.error_codes import NON_FIELD_ERRORS, ErrorCode


class AccountErrorCode(ErrorCode):
    INVALID_CREDENTIALS = (
        status.HTTP_400_BAD_REQUEST,
        NON_FIELD_ERRORS,
        "Unable to log in with provided credentials.",
        "Login with an unknown username, a wrong password or an inactive user: the same "
        "answer for all three.",
    )
    LOGINS_BUSY = (
        status.HTTP_503_SERVICE_UNAVAILABLE,
        None,
        "Too many logins in progress. Retry in a second.",
        "As many logins as `LOGIN_CONCURRENCY` allows (2 by default, counted across every "
        "app process on the database) are checking a password: a check costs a large "
        "share of a second of CPU on purpose, and logins may not take every worker. "
        "`Retry-After: 1`.",
    )
