"""Login's errors."""

from omnitron.api.exceptions import CodedError

from .error_codes import AccountErrorCode


class InvalidCredentials(CodedError):
    error = AccountErrorCode.INVALID_CREDENTIALS


class LoginsBusy(CodedError):
    error = AccountErrorCode.LOGINS_BUSY
    wait = 1
