"""The admin's login, limited like the API's: the same per-address and per-username
counters, so guessing a password gains nothing by switching from one to the other,
and the same login slots (accounts/services.py); and its own password change, whose
check of the old password takes a login slot too. A password set in the admin replaces
the user's API token."""

from contextlib import contextmanager

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from rest_framework.authtoken.models import TokenProxy

from .exceptions import LoginsBusy
from .services import api_token_replace_if_any, login_slot
from .throttling import login_wait


@contextmanager
def login_slot_or_form_error(message: str):
    """A login slot for an admin form's password check; all taken: the form's error."""
    try:
        with login_slot():
            yield
    except LoginsBusy:
        raise ValidationError(message, code="busy") from None


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": "Too many login attempts. Try again in %(wait)s seconds.",
        "busy": "Too many logins in progress. Try again in a second.",
    }

    def clean(self):
        # Counted and checked before the password: a refused attempt tells nothing.
        wait = login_wait(self.request)
        if wait is not None:
            raise ValidationError(
                self.error_messages["throttled"], code="throttled", params={"wait": wait}
            )
        with login_slot_or_form_error(self.error_messages["busy"]):
            return super().clean()


admin.site.login_form = ThrottledAdminLoginForm


class ReplacesTokenMixin:
    """A password set in the admin (the user's own, or on a user's page) replaces the
    user's API token: whoever had the old password could have obtained the token from
    the API's login, and kept it after a reset made to shut them out. The user's
    clients log in again with the new password. (`create_api_user --password`, the
    provisioning command, keeps the token, as documented.)"""

    def save(self, commit=True):
        user = super().save(commit=commit)
        if commit:
            api_token_replace_if_any(user=user)
        return user


class UserPasswordForm(ReplacesTokenMixin, auth_forms.AdminPasswordChangeForm):
    """The password on a user's page (auth's UserAdmin)."""


class SlottedPasswordChangeForm(ReplacesTokenMixin, AdminPasswordChangeForm):
    """Checking the old password costs what a login's check does, and is one: it counts
    against the login limits of the user and the address, and takes a login slot.
    Forty at once from one session held every worker for 6 s; then a staff session
    kept both slots busy (every login 503) and guessed its own account's password nine
    times a second, past the per-username limit. The admin site gives it the request
    (omnitron/admin/site.py)."""

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_old_password(self):
        wait = login_wait(self.request, username=self.user.get_username())
        if wait is not None:
            raise ValidationError(
                "Too many password attempts. Try again in %(wait)s seconds.",
                code="throttled", params={"wait": wait},
            )  # fmt: skip
        with login_slot_or_form_error(
            "Too many password checks in progress. Try again in a second."
        ):
            return super().clean_old_password()


admin.site.password_change_form = SlottedPasswordChangeForm
# A user's password page (auth's UserAdmin, registered before this app's admin loads).
admin.site.get_model_admin(get_user_model()).change_password_form = UserPasswordForm
# DRF's token list showed every key in full, to superusers: named as everywhere else,
# by its user and last four characters (accounts/apps.py). A lost key is rotated.
admin.site.get_model_admin(TokenProxy).list_display = ("__str__", "user", "created")
