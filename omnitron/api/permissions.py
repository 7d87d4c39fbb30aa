from rest_framework.permissions import BasePermission

from .error_codes import ApiErrorCode


class HasRequiredPermission(BasePermission):
    """The view's `required_permission` ("app_label.codename"), held directly, through
    a group, or as a superuser. TokenAuthentication has already looked it up."""

    message = ApiErrorCode.PERMISSION_DENIED.message

    def has_permission(self, request, view):
        user = request.user
        known = getattr(user, "has_required_permission", None)
        if known is not None:
            return known
        return bool(user and user.has_perm(view.required_permission))
