from rest_framework.permissions import BasePermission


class CanCaptureOrders(BasePermission):
    """The `orders.capture_order` permission (superusers have every permission)."""

    message = "You do not have permission to capture orders."

    def has_permission(self, request, view):
        user = request.user
        known = getattr(user, "can_capture", None)  # loaded with the token
        if known is not None:
            return known
        return bool(user and user.has_perm("orders.capture_order"))
