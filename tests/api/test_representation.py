"""Output serializers build their fields once per class (SharedFieldsMixin): their
answers equal those of the same serializer built the ordinary DRF way, for full and
empty rows, one instance after another (no state left from the previous one)."""

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from rest_framework.renderers import JSONRenderer

from capture.models import Capture, CaptureItem
from capture.serializers import CaptureItemSerializer, CaptureSerializer
from omnitron.api.serializers import ModelSerializer
from orders.serializers import OrderItemSerializer, OrderSerializer
from tests.factories import OrderItemFactory, make_api_user, make_order


def without_shared_fields(serializer_class):
    """The same serializer as a plain DRF ModelSerializer (nested ones too)."""
    declared = copy.deepcopy(serializer_class._declared_fields)
    for name, field in declared.items():
        child = getattr(field, "child", None)
        if hasattr(child, "_declared_fields"):
            declared[name] = without_shared_fields(type(child))(many=True, read_only=True,
                                                               source=field.source)  # fmt: skip
    return type(f"Plain{serializer_class.__name__}", (ModelSerializer,),
                {**declared, "Meta": serializer_class.Meta})  # fmt: skip


def assert_same_as_drf(serializer_class, *instances):
    plain = without_shared_fields(serializer_class)
    for instance in instances:
        ours, drf = serializer_class(instance).data, plain(instance).data
        assert dict(ours) == dict(drf)
        assert JSONRenderer().render(ours) == JSONRenderer().render(drf)


FULL = {
    "payment_option": 3, "installment": 7, "cargo_company": 11, "external_status": 2,
    "checkout_provider_id": 5, "shipping_company": "mng", "remote_addr": "192.168.1.20",
    "e_archive_url": "https://e.example.com/a/1", "installment_count": 3,
    "invoice_date": datetime(2026, 11, 22, 9, 30, 15, 123456, tzinfo=UTC),
    "shipping_tax_rate": Decimal("18.00"), "delivery_type": "next_day",
    "cancel_status": "waiting", "client_type": "ios", "is_send": True,
    "delivery_range": {"start": "2026-11-23T09:00:00Z"}, "extra_field": {"a": [1, 2]},
    "notes": "ring twice", "amount": Decimal("1234567890.12"),
    "date_placed": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=3))),
}  # fmt: skip


def test_orders_and_items_render_as_drf_renders_them(channel):
    full = make_order(channel=channel, items=0, **FULL)
    empty = make_order(channel=channel, items=0)
    for order in (full, empty):
        order.refresh_from_db()
    assert_same_as_drf(OrderSerializer, full, empty, full)
    items = [OrderItemFactory(order=full, attributes={"k": "v"}), OrderItemFactory(order=empty)]
    for item in items:
        item.refresh_from_db()
    assert_same_as_drf(OrderItemSerializer, *items)


def test_captures_render_as_drf_renders_them(channel):
    order = make_order(channel=channel, items=2)
    user = make_api_user(channels=[channel])
    capture = Capture.objects.create(order=order, user=user, created_at=order.date_placed,
                                     amount=Decimal("100.00"), currency="try",
                                     idempotency_key=None, request_id="r-1")  # fmt: skip
    for item in order.items.all():
        CaptureItem.objects.create(capture=capture, order_item=item, price=item.price,
                                   attributes_before={}, attributes_after={"x": 1})  # fmt: skip
    capture = Capture.objects.select_related("order", "user").get(pk=capture.pk)
    assert_same_as_drf(CaptureSerializer, capture)
    assert_same_as_drf(CaptureItemSerializer, *capture.items.all())
