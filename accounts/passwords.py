"""The longest password: what the API's login takes (each login hashes what it is
sent, so a password of megabytes would cost its hash's CPU per byte), and so what the
admin and `create_api_user` may set: a longer one could log in to the admin but never
through the API, whose clients (omnisdk) would be locked out."""

from django.core.exceptions import ValidationError

MAX_PASSWORD_LENGTH = 1024


def password_length_error(password: str) -> str | None:
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"A password has at most {MAX_PASSWORD_LENGTH:,} characters (the API's login)."
    return None


class MaximumLengthValidator:
    """For AUTH_PASSWORD_VALIDATORS: the admin's password forms."""

    def validate(self, password, user=None):
        if error := password_length_error(password):
            raise ValidationError(error, code="password_too_long")

    def get_help_text(self):
        return f"Your password can’t be longer than {MAX_PASSWORD_LENGTH:,} characters."
