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
