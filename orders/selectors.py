"""Reads of the orders domain, always through a user's channels."""

from django.db.models import F, Lookup, QuerySet

from .models import ChannelMembership, Order, OrderItem


def channel_ids_for_user(user) -> QuerySet:
    """A subquery of the channel ids a user may see (not evaluated on its own)."""
    return ChannelMembership.objects.filter(user_id=user.pk).values("channel_id")


def channel_id_list_for_user(user) -> list[int]:
    """The channel ids a user may see, read now (one statement), for `in_channels`."""
    return list(channel_ids_for_user(user).values_list("channel_id", flat=True))


def in_channels(queryset: QuerySet, channel_ids: list[int]) -> QuerySet:
    """The rows of `queryset` (of a model with a `channel`) in these channels.

    Orders, items, captures and events each have an index that starts with the channel
    and goes on in the list's order, so a channel's page is one range of it, however many
    rows the other channels hold. Two things keep PostgreSQL on that range, or it walks
    the list's order index testing each row's channel (a million rows for twenty:
    docs/performance.md, "A small channel among large ones"):
    - the ids are values, not a subquery of the user's channels, which the planner
      cannot see into;
    - they are written into the statement, not bound. psycopg prepares a statement
      after its fifth run, and PostgreSQL may then keep one generic plan for every
      channel, made for an average channel: right for a channel of millions of rows,
      wrong for one of twenty. Each channel's statement now has its own plan."""
    return queryset.filter(InLiterals(F("channel_id"), list(channel_ids)))


def visible_to(queryset: QuerySet, user) -> QuerySet:
    """The rows of `queryset` (of a model with a `channel`) the user may see: those of
    their channels, every row for a superuser. Every read of orders, items, captures
    and events goes through it (the API, the admin, the event feed)."""
    if user.is_superuser:
        return queryset
    return in_channels(queryset, channel_id_list_for_user(user))


def channel_visible_sql(channel: str, *, user: str, superuser: str) -> str:
    """visible_to's rule as an SQL condition, for the capture's hand-written statements:
    the row's `channel` is one of the user's, or the user is a superuser (each an SQL
    expression)."""
    return f"""({superuser} OR {channel} IN (
                SELECT channel_id FROM {ChannelMembership._meta.db_table}
                 WHERE user_id = {user}))"""


class InLiterals(Lookup):
    """`lhs IN (1, 2, …)` with the integers written into the statement (used as an
    expression, `filter(InLiterals(F(...), ids))`; not registered as a lookup)."""

    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        ids = ", ".join(str(int(value)) for value in self.rhs) or "NULL"
        return f"{lhs} IN ({ids})", params


class EqualsChoice(Lookup):
    """`lhs = 'value'` with one of the field's choices written into the statement (used
    as an expression, `filter(EqualsChoice(F(...), value))`; not registered as a
    lookup). Bound as a parameter, a statement prepared by psycopg may get one generic
    plan for every value, made for an average one: for the orders' status, a walk of
    the list's order index testing each order, which reads the whole table for a
    status few orders have (docs/performance.md, "Cost as data grows"). Written in,
    each value is planned with its own statistics."""

    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        choices = {str(value) for value, _ in self.lhs.output_field.flatchoices}
        if self.rhs not in choices:
            raise ValueError(f"not a choice of {self.lhs.output_field.name}: {self.rhs!r}")
        quoted = self.rhs.replace("'", "''")  # (a choice is the code's own text)
        return f"{lhs} = '{quoted}'", params


def order_list_for_user(*, user, filters: dict | None = None) -> QuerySet[Order]:
    """Orders the user may see: those of their channels; every order for a superuser.
    Filters: number, channel, status, date_placed__gte, date_placed__lte, is_send."""
    orders = visible_to(Order.objects.all(), user)
    filters = dict(filters or {})
    if "channel" in filters:
        orders = in_channels(orders, [filters.pop("channel")])
    if "status" in filters:
        orders = orders.filter(EqualsChoice(F("status"), filters.pop("status")))
    return orders.filter(**filters)


def order_item_list_for_user(*, user, filters: dict | None = None) -> QuerySet[OrderItem]:
    """Items of the orders the user may see. Filters: order, status, is_captured."""
    items = visible_to(OrderItem.objects.all(), user)
    filters = dict(filters or {})
    if "is_captured" in filters:
        items = items.filter(captured_at__isnull=not filters.pop("is_captured"))
    if "status" in filters:
        items = items.filter(EqualsChoice(F("status"), filters.pop("status")))
    if "order" in filters:
        filters["order_id"] = filters.pop("order")
    return items.filter(**filters)
