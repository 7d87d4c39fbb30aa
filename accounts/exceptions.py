"""Login's errors besides invalid credentials (a validation error of its serializer)."""

from omnitron.api.exceptions import CodedError

from .error_codes import AccountErrorCode


class LoginsBusy(CodedError):
    error = AccountErrorCode.LOGINS_BUSY
    wait = 1
