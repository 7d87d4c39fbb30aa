"""The admin's login, limited like the API's: the same per-address and per-username
counters, so guessing a password gains nothing by switching from one to the other."""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from .throttling import login_wait


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": "Too many login attempts. Try again in %(wait)s seconds.",
    }

    def clean(self):
        # Counted and checked before the password: a refused attempt tells nothing.
        wait = login_wait(self.request)
        if wait is not None:
            raise ValidationError(
                self.error_messages["throttled"], code="throttled", params={"wait": wait}
            )
        return super().clean()


admin.site.login_form = ThrottledAdminLoginForm
