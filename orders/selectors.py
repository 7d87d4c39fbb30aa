"""Reads of the orders domain, always through a user's channels."""

from django.db.models import QuerySet

from .models import ChannelMembership, Order, OrderItem


def channel_ids_for_user(user) -> QuerySet:
    """A subquery of the channel ids a user may see (not evaluated on its own)."""
    return ChannelMembership.objects.filter(user_id=user.pk).values("channel_id")


def order_list_for_user(*, user, filters: dict | None = None) -> QuerySet[Order]:
    """Orders the user may see: those of their channels; every order for a superuser.
    Filters: number, channel, status, date_placed__gte, date_placed__lte.

    The user's channels are read first and given as values: for a user of one channel
    the list, in its order, is then one range of the (channel, date_placed, id) index,
    however many orders the other channels hold (as a subquery, PostgreSQL walked the
    whole date index testing each order's channel: docs/performance.md)."""
    orders = Order.objects.all()
    if not user.is_superuser:
        channels = list(channel_ids_for_user(user).values_list("channel_id", flat=True))
        orders = orders.filter(channel_id__in=channels)
    filters = dict(filters or {})
    if "channel" in filters:
        filters["channel_id"] = filters.pop("channel")
    return orders.filter(**filters)


def order_item_list_for_user(*, user, filters: dict | None = None) -> QuerySet[OrderItem]:
    """Items of the orders the user may see. Filters: order, status, is_captured."""
    items = OrderItem.objects.all()
    if not user.is_superuser:
        items = items.filter(order__channel_id__in=channel_ids_for_user(user))
    filters = dict(filters or {})
    if "is_captured" in filters:
        items = items.filter(captured_at__isnull=not filters.pop("is_captured"))
    if "order" in filters:
        filters["order_id"] = filters.pop("order")
    return items.filter(**filters)
