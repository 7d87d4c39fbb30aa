"""order_capture called directly, as another caller than the API would: it takes
domain arguments, returns the order and raises the capture's domain errors."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from capture import exceptions as errors
from capture.models import Capture
from capture.services import ItemInput, order_capture
from orders.enums import OrderStatus
from orders.models import Order, OrderItem
from tests.capture.locks import holding_order_lock
from tests.factories import ChannelFactory, OrderItemFactory, make_api_user, make_order


def capture_pks(user, order, pks, **kwargs) -> Order:
    items = [ItemInput(pk) for pk in pks]
    return order_capture(user=user, order_number=order.number, items=items, **kwargs)


def test_it_returns_the_order_after_the_capture_and_writes_the_audit(api_user, order):
    first, second, _ = order.items.order_by("pk")
    OrderItem.objects.filter(pk=first.pk).update(attributes={"color": "red"}, price="12.30")

    result = order_capture(
        user=api_user,
        order_number=order.number,
        items=[ItemInput(first.pk, {"weight_kg": 2}), ItemInput(second.pk)],
        idempotency_key="k-1",
        request_id="req-1",
    )

    assert isinstance(result, Order)
    assert result.pk == order.pk
    assert result.modified_date > order.modified_date
    first.refresh_from_db()
    assert first.attributes == {"color": "red", "weight_kg": 2}
    assert first.captured_at is not None
    audit = Capture.objects.get()
    assert (audit.amount, audit.idempotency_key, audit.request_id) == (
        Decimal("62.30"), "k-1", "req-1")  # fmt: skip
    assert sorted(audit.items.values_list("order_item_id", flat=True)) == [first.pk, second.pk]


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        (lambda order, pks: Order.objects.filter(pk=order.pk).update(number="gone"), errors.OrderNotFound),
        (lambda order, pks: Order.objects.filter(pk=order.pk).update(status=OrderStatus.WAITING),
         errors.OrderNotCapturable),
        (lambda order, pks: pks.append(10**12), errors.OrderItemNotFound),
        (lambda order, pks: OrderItem.objects.filter(pk=pks[0]).update(status=OrderStatus.CANCELED),
         errors.OrderItemNotCapturable),
    ],
)  # fmt: skip
def test_each_rule_raises_its_domain_error_and_writes_nothing(api_user, order, setup, error):
    pks = list(order.items.values_list("pk", flat=True))
    setup(order, pks)
    with pytest.raises(error):
        capture_pks(api_user, order, pks)
    assert not OrderItem.objects.filter(captured_at__isnull=False).exists()
    assert not Capture.objects.exists()


def test_a_second_capture_raises_already_captured_naming_the_items(api_user, order):
    pks = list(order.items.values_list("pk", flat=True))
    capture_pks(api_user, order, pks[:2])
    with pytest.raises(errors.AlreadyCaptured) as raised:
        capture_pks(api_user, order, pks)
    assert raised.value.pks == sorted(pks[:2])
    assert Capture.objects.count() == 1


def test_another_channels_order_is_not_found_and_a_shared_number_is_ambiguous(channel):
    other = ChannelFactory()
    user = make_api_user(channels=[channel])
    foreign = make_order(channel=other, items=1)
    with pytest.raises(errors.OrderNotFound):
        capture_pks(user, foreign, [foreign.items.get().pk])

    user_of_both = make_api_user(channels=[channel, other])
    twin = make_order(channel=channel, items=1, number=foreign.number)
    with pytest.raises(errors.OrderAmbiguous):
        capture_pks(user_of_both, twin, [twin.items.get().pk])
    assert capture_pks(user_of_both, twin, [twin.items.get().pk], channel=channel.pk).pk == twin.pk


def test_a_refusal_leaves_an_enclosing_transaction_usable(api_user, order):
    """The Idempotency-Key flow wraps the capture in its own transaction and stores
    a refusal in it: the capture must not poison that transaction."""
    first, second, _ = order.items.values_list("pk", flat=True)
    capture_pks(api_user, order, [first])
    with transaction.atomic():
        with pytest.raises(errors.AlreadyCaptured):
            capture_pks(api_user, order, [first])
        capture_pks(api_user, order, [second])  # the same transaction goes on
    assert Capture.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_order_locked_past_the_lock_timeout_raises_order_locked(api_user, channel):
    order = make_order(channel=channel, items=1)
    OrderItemFactory(order=order)
    with holding_order_lock(order), pytest.raises(errors.OrderLocked):
        capture_pks(api_user, order, [order.items.first().pk])
    assert not Capture.objects.exists()


def test_prices_are_judged_under_the_lock_too(api_user, order):
    """Without the authentication statement's read (`seen`), the rules judge what the
    locking read saw: the same refusal."""
    item = order.items.first()
    OrderItem.objects.filter(pk=item.pk).update(price_currency="eur")
    with pytest.raises(errors.OrderItemPriceInvalid):
        capture_pks(api_user, order, [item.pk])
    assert not Capture.objects.exists()


def test_a_capture_that_took_its_time_before_a_later_one_leaves_the_later_modified_date(
    api_user, order, monkeypatch
):
    """A capture takes its time before it waits for the order's lock: one that waited
    behind a capture that started after it committed second, and set the order's
    modified_date back to its earlier time (helper 113, from the code). An ERP keeping
    the newest state by modified_date then kept the older one."""
    first, second, _ = order.items.order_by("pk")
    later = capture_pks(api_user, order, [first.pk]).modified_date
    earlier = later - timedelta(seconds=2)
    monkeypatch.setattr("capture.services.timezone.now", lambda: earlier)
    answered = capture_pks(api_user, order, [second.pk])
    assert answered.modified_date == later == Order.objects.get(pk=order.pk).modified_date
    second.refresh_from_db()
    assert second.captured_at == earlier  # the item's own time is the capture's
