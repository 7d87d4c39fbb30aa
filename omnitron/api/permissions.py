from rest_framework.permissions import BasePermission

from .error_codes import ApiErrorCode


class HasRequiredPermission(BasePermission):
    """The view's `required_permission` ("app_label.codename"), held directly, through
    a group, or as a superuser. accounts' TokenAuthentication has looked it up already
    (`request.auth`, a TokenStatement); asked here otherwise."""

    message = ApiErrorCode.PERMISSION_DENIED.message

    def has_permission(self, request, view):
        known = getattr(request.auth, "has_required_permission", None)
        if known is not None:
            return known
        return bool(request.user and request.user.has_perm(view.required_permission))
