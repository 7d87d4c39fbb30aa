"""Reads of the capture audit, through the user's channels."""

from django.db.models import Prefetch, QuerySet

from orders.selectors import channel_ids_for_user

from .models import Capture, CaptureItem


def capture_list_for_user(*, user, filters: dict | None = None) -> QuerySet[Capture]:
    """Captures of the orders the user may see, with their items. Filters: order."""
    captures = Capture.objects.select_related("order", "user").prefetch_related(
        Prefetch("items", queryset=CaptureItem.objects.order_by("order_item_id"))
    )
    if not user.is_superuser:
        captures = captures.filter(order__channel_id__in=channel_ids_for_user(user))
    if filters and "order" in filters:
        captures = captures.filter(order_id=filters["order"])
    return captures
