"""Writes of the orders domain: the import that brings orders in, the ERP's mark-sent,
and API users' access to orders (their channels and permissions, with their token;
accounts/ holds what concerns users alone, such as rotating a token)."""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.passwords import password_length_error
from accounts.services import api_token_get_or_create, username_as_stored

from .importing import (
    ChannelImportSerializer,
    CustomerImportSerializer,
    OrderImportSerializer,
    error_lines,
)
from .models import Channel, ChannelMembership, Customer, Order, OrderItem

SECTIONS = ("channels", "customers", "orders")
VALIDATION_CHUNK = 500
INSERT_BATCH = 5000

# What --staff operators may see in the admin.
STAFF_VIEW_PERMISSIONS = ["view_order", "view_orderitem", "view_capture", "view_captureitem"]

Progress = Callable[[str, int, int], None]


class ApiUserInvalid(ValueError):
    """An API user cannot be made as asked (the message says why); nothing changed."""


class ImportInvalid(Exception):
    """The file was refused; nothing was written. `errors` name each bad record."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"{len(errors)} invalid record(s): " + "; ".join(errors[:5]))


@dataclass
class ImportResult:
    created: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"created": self.created, "skipped": self.skipped}


def orders_import(*, data, progress: Progress | None = None) -> ImportResult:
    """Import channels, customers and orders with their items, all or nothing.

    Channels and customers are upserted by pk. An order whose (channel, number)
    exists is skipped and reported, never changed. Raises ImportInvalid, naming
    every bad record, when anything is invalid."""
    progress = progress or (lambda stage, done, total: None)
    channels, customers, orders = _validate(data, progress)

    with transaction.atomic():
        _one_import_at_a_time()
        Channel.objects.bulk_create(
            [Channel(id=c["pk"], name=c["name"]) for c in channels],
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=["name"],
        )
        Customer.objects.bulk_create(
            [Customer(id=c.pop("pk"), **c) for c in customers],
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=["email", "first_name", "last_name"],
        )
        existing = _existing_orders(sorted({o["number"] for o in orders}))
        result = ImportResult()
        new_orders, new_items = [], []
        for values in orders:
            if (values["channel"], values["number"]) in existing:
                result.skipped.append({"number": values["number"], "channel": values["channel"]})
                continue
            items = values.pop("items", [])
            channel_id, customer_id = values.pop("channel"), values.pop("customer")
            order = Order(channel_id=channel_id, customer_id=customer_id, **values)
            new_orders.append((order, [_new_item(order, item) for item in items]))
        Order.objects.bulk_create([order for order, _ in new_orders], batch_size=INSERT_BATCH)
        for order, items in new_orders:
            for item in items:
                item.order_id = order.pk
            new_items += items
        for start in range(0, len(new_items), INSERT_BATCH):
            OrderItem.objects.bulk_create(new_items[start : start + INSERT_BATCH])
            progress("writing items", min(start + INSERT_BATCH, len(new_items)), len(new_items))

    result.created = [
        {
            "pk": order.pk,
            "number": order.number,
            "channel": order.channel_id,
            "items": [{"pk": item.pk, "product_sku": item.product_sku} for item in items],
        }
        for order, items in new_orders
    ]
    return result


# The advisory lock imports take, in PostgreSQL's space of two-integer keys (apart
# from the one-bigint keys of capture/idempotency.py).
IMPORT_LOCK = (1, 0)


def _one_import_at_a_time() -> None:
    """Within the import's transaction: wait for any other import to end. Two imports
    of files sharing orders both looked for existing orders before either committed,
    and the second failed on the unique (number, channel) with a traceback, none of its
    own orders imported. The wait has no timeout: an import takes what its file takes."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = 0")
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", IMPORT_LOCK)
        cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
        cursor.execute("SET LOCAL statement_timeout TO DEFAULT")


def _existing_orders(numbers: list[str]) -> set[tuple[int, str]]:
    """(channel, number) of the orders with these numbers, looked up INSERT_BATCH
    numbers at a time: one bound parameter each, and a statement takes at most 65,535
    (a file of 200,000 orders failed at the end)."""
    existing = set()
    for start in range(0, len(numbers), INSERT_BATCH):
        batch = numbers[start : start + INSERT_BATCH]
        existing.update(Order.objects.filter(number__in=batch).values_list("channel_id", "number"))
    return existing


def _new_item(order: Order, values: dict) -> OrderItem:
    values.setdefault("price_currency", order.currency)
    values.setdefault("status", order.status)
    return OrderItem(**values)


def _validate(data, progress: Progress) -> tuple[list, list, list]:
    if not isinstance(data, dict):
        raise ImportInvalid(["The file must hold a JSON object."])
    errors = [f"{key}: Unknown section." for key in sorted(set(data) - set(SECTIONS))]
    for key in SECTIONS:
        if not isinstance(data.get(key, []), list):
            errors.append(f"{key}: Must be a list.")
    if errors:
        raise ImportInvalid(errors)

    channels = _validate_section("channels", data, ChannelImportSerializer, errors, progress)
    customers = _validate_section("customers", data, CustomerImportSerializer, errors, progress)
    orders = _validate_section("orders", data, OrderImportSerializer, errors, progress)
    if not errors:
        errors += _check_references(channels, customers, orders)
    if errors:
        raise ImportInvalid(errors)
    return channels, customers, orders


def _validate_section(name, data, serializer_class, errors, progress) -> list[dict]:
    records = data.get(name, [])
    validated = []
    for start in range(0, len(records), VALIDATION_CHUNK):
        chunk = records[start : start + VALIDATION_CHUNK]
        serializer = serializer_class(data=chunk, many=True)
        if serializer.is_valid():
            validated += serializer.validated_data
        else:
            by_index = serializer.errors
            if isinstance(by_index, list):
                by_index = dict(enumerate(by_index))
            for offset, record_errors in by_index.items():
                if record_errors:
                    errors += error_lines(record_errors, f"{name}[{start + offset}]")
        progress(f"validating {name}", min(start + VALIDATION_CHUNK, len(records)), len(records))
    return validated


def _check_references(channels, customers, orders) -> list[str]:
    """Channels and customers must be in the file or already in the database, each pk
    once in a file; an order number appears once per channel in a file."""
    wanted_channels = {o["channel"] for o in orders} - {c["pk"] for c in channels}
    known_channels = set(
        Channel.objects.filter(id__in=wanted_channels).values_list("id", flat=True)
    )
    wanted_customers = {o["customer"] for o in orders} - {c["pk"] for c in customers}
    known_customers = set(
        Customer.objects.filter(id__in=wanted_customers).values_list("id", flat=True)
    )
    errors, first_seen = [], {}
    for name, records in (("channels", channels), ("customers", customers)):
        first_index = {}
        for index, record in enumerate(records):
            if record["pk"] in first_index:
                errors.append(f"{name}[{index}].pk: {record['pk']} is also "
                              f"{name}[{first_index[record['pk']]}].")  # fmt: skip
            first_index.setdefault(record["pk"], index)
    for index, order in enumerate(orders):
        if order["channel"] in wanted_channels - known_channels:
            errors.append(f"orders[{index}].channel: Unknown channel {order['channel']}.")
        if order["customer"] in wanted_customers - known_customers:
            errors.append(f"orders[{index}].customer: Unknown customer {order['customer']}.")
        key = (order["channel"], order["number"])
        if key in first_seen:
            errors.append(
                f"orders[{index}].number: Order {order['number']} of channel {order['channel']}"
                f" is also orders[{first_seen[key]}]."
            )
        first_seen.setdefault(key, index)
    return errors


def api_user_create_or_update(
    *,
    username: str,
    channel_ids: list[int] | None = None,
    all_channels: bool = False,
    can_capture: bool = True,
    can_mark_sent: bool = False,
    password: str | None = None,
    staff: bool = False,
    superuser: bool = False,
) -> Token:
    """Create or update an API user and return their token. The user's channels become
    exactly the given ones (every existing channel with all_channels); re-running it
    with the same arguments changes nothing, and a user an operator deactivated stays
    inactive. Staff may log in to the admin and view orders, items and captures (of
    their channels). Raises ApiUserInvalid for a username Django refuses, an empty
    password or one longer than the login takes, or a channel that does not exist."""
    User = get_user_model()
    username = username_as_stored(username)
    try:  # Django's own rules for a username: 1 to 150 letters, digits and @.+-_
        User._meta.get_field(User.USERNAME_FIELD).clean(username, None)
    except ValidationError as exc:
        raise ApiUserInvalid(f"Not a username: {' '.join(exc.messages)}") from None
    if password == "":
        raise ApiUserInvalid("A password cannot be empty (login refuses it).")
    if password is not None and (error := password_length_error(password)):
        raise ApiUserInvalid(error)
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        if password is not None:
            user.set_password(password)
        elif created:
            user.set_unusable_password()  # token only, until a password is given
        user.is_superuser = superuser
        user.is_staff = staff or superuser
        user.save()  # an operator's deactivation (is_active, in the admin) stays
        _grant(user, capture=can_capture, mark_sent=can_mark_sent, staff=staff)
        if all_channels:
            _set_channels(user, list(Channel.objects.values_list("id", flat=True)))
        elif channel_ids is not None:
            _set_channels(user, channel_ids)
        return api_token_get_or_create(user=user)


def _grant(user, *, capture: bool, mark_sent: bool, staff: bool) -> None:
    """Exactly these permissions of an API user: capturing, marking orders sent, and
    the staff's views of orders, items and captures."""
    for codename, granted in (("capture_order", capture), ("mark_order_sent", mark_sent)):
        permission = Permission.objects.get(content_type__app_label="orders", codename=codename)
        (user.user_permissions.add if granted else user.user_permissions.remove)(permission)
    views = Permission.objects.filter(
        content_type__app_label__in=["orders", "capture"], codename__in=STAFF_VIEW_PERMISSIONS
    )
    (user.user_permissions.add if staff else user.user_permissions.remove)(*views)


def _set_channels(user, channel_ids: list[int]) -> None:
    """The user's channels become exactly these; ApiUserInvalid names any that does
    not exist."""
    known = set(Channel.objects.filter(id__in=channel_ids).values_list("id", flat=True))
    if unknown := set(channel_ids) - known:
        raise ApiUserInvalid(f"Unknown channel(s): {', '.join(map(str, sorted(unknown)))}")
    ChannelMembership.objects.filter(user=user).exclude(channel_id__in=channel_ids).delete()
    ChannelMembership.objects.bulk_create(
        [ChannelMembership(user=user, channel_id=pk) for pk in channel_ids], ignore_conflicts=True
    )


def order_mark_sent(*, order: Order, is_send: bool) -> Order:
    """Record whether the ERP has taken the order (Omnitron's `is_send`); returns the
    order as it is then, read again under its lock. Marking it as it already is changes
    nothing, its modified_date included (a retried PATCH does not make the order look
    changed). The new modified_date is taken once the lock is held, and is never before
    the stored one."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.is_send == is_send:
            return order
        order.is_send = is_send
        order.modified_date = max(timezone.now(), order.modified_date)
        Order.objects.filter(pk=order.pk).update(is_send=is_send, modified_date=order.modified_date)
    return order


def order_item_captured_at_locked(item: OrderItem):
    """The item's `captured_at` as it is now, with the item and its order locked until
    the caller's transaction ends: the order first, then the item, as a capture locks
    them, so the two never deadlock. For a change that must not race a capture (the
    admin's item form: a capture that came while its page was open)."""
    list(Order.objects.select_for_update().filter(pk=item.order_id).values("pk"))
    return (OrderItem.objects.select_for_update().values_list("captured_at", flat=True)).get(
        pk=item.pk
    )
