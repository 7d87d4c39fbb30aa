from omnitron.api.permissions import HasRequiredPermission


class CanCaptureOrders(HasRequiredPermission):
    """The capture view's `required_permission`, orders.capture_order."""

    message = "You do not have permission to capture orders."
