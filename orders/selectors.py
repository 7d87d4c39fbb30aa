"""Reads of the orders domain, always through a user's channels."""

from django.db.models import QuerySet

from .models import Channel, ChannelMembership, Order, OrderItem


def channel_ids_for_user(user) -> QuerySet:
    """A subquery of the channel ids a user may see (not evaluated on its own)."""
    return ChannelMembership.objects.filter(user_id=user.pk).values("channel_id")


def order_list_for_user(*, user) -> QuerySet[Order]:
    """Orders the user may see: those of their channels; every order for a superuser."""
    orders = Order.objects.all()
    if user.is_superuser:
        return orders
    return orders.filter(channel_id__in=channel_ids_for_user(user))


def order_item_list_for_user(*, user) -> QuerySet[OrderItem]:
    items = OrderItem.objects.all()
    if user.is_superuser:
        return items
    return items.filter(order__channel_id__in=channel_ids_for_user(user))


def channel_list_for_user(*, user) -> QuerySet[Channel]:
    channels = Channel.objects.all()
    if user.is_superuser:
        return channels
    return channels.filter(id__in=channel_ids_for_user(user))
