"""The project's admin site (omnitron/admin/__init__.py)."""

from django.contrib import admin
from django.contrib.admin.views import autocomplete
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import PermissionDenied
from django.db import models
from django.urls import reverse

from .checked_input import CheckedInputMixin, with_mixin


class SuperuserOnly:
    """Pages only superusers see and use, whatever permissions staff are given."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request, *args):
        return self.has_module_permission(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request) and super().has_delete_permission(request, obj)


# Other apps' pages that reach every channel: API tokens (a key is a user's access to
# their channels' orders: staff given the token permissions read and made any user's
# key) and the task queue's jobs (every channel's deliveries, retried or cancelled).
SUPERUSER_ONLY_APPS = {"authtoken", "procrastinate"}


class AdminSite(admin.AdminSite):
    """The project's admin site: a ModelAdmin registered without CheckedInputMixin,
    another app's included, is registered as a subclass with it in front
    (`Checked<name>`: the mixin's checks run before the admin's own overrides); one of
    SUPERUSER_ONLY_APPS with SuperuserOnly in front too."""

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = with_mixin(admin_class or admin.ModelAdmin, CheckedInputMixin)
        models_ = [model_or_iterable] if isinstance(model_or_iterable, type) else model_or_iterable
        for model in models_:
            model_admin = admin_class
            if model._meta.app_label in SUPERUSER_ONLY_APPS:
                model_admin = with_mixin(admin_class, SuperuserOnly, prefix="SuperuserOnly")
            super().register(model, model_admin, **options)

    # The form of the admin's own password change, as `login_form` is the login's
    # (accounts/admin.py sets both), given the request as the login's is; None:
    # Django's.
    password_change_form = None

    def autocomplete_view(self, request):
        return AutocompleteJsonView.as_view(admin_site=self)(request)

    def password_change(self, request, extra_context=None):
        if self.password_change_form is None:
            return super().password_change(request, extra_context)
        request.current_app = self.name
        return PasswordChangeWithRequestView.as_view(
            form_class=self.password_change_form,
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
        )(request)


class PasswordChangeWithRequestView(PasswordChangeView):
    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}


class AutocompleteJsonView(autocomplete.AutocompleteJsonView):
    """Django's autocomplete, refusing a reverse relation (`field_name=items` of an
    order) as it refuses a field that is not a relation: Django failed on it (500)."""

    def process_request(self, request):
        term, model_admin, source_field, to_field_name = super().process_request(request)
        if isinstance(source_field, models.ForeignObjectRel):
            raise PermissionDenied
        return term, model_admin, source_field, to_field_name
