"""The codes of the orders endpoints besides those of omnitron/api/error_codes.py."""

from rest_framework import status

from omnitron.api.error_codes import ANY_FIELD, ErrorCode


class OrderErrorCode(ErrorCode):
    NOT_WRITABLE = (
        status.HTTP_400_BAD_REQUEST,
        ANY_FIELD,
        "This field cannot be changed here: only is_send can.",
        "`PATCH /api/v1/orders/{pk}/` with a field other than `is_send` (the first ten "
        "such fields, by name, are each answered).",
    )
