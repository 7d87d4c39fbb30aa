from rest_framework.permissions import BasePermission


class HasRequiredPermission(BasePermission):
    """The view's `required_permission` ("app_label.codename"), held directly, through
    a group, or as a superuser. TokenAuthentication has already looked it up."""

    message = "You do not have permission to perform this action."

    def has_permission(self, request, view):
        user = request.user
        known = getattr(user, "has_required_permission", None)
        if known is not None:
            return known
        return bool(user and user.has_perm(view.required_permission))
