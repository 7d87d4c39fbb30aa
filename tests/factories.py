"""Builders for test data (factory-boy)."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.authtoken.models import Token

from orders.enums import Currency, OrderStatus
from orders.models import Channel, ChannelMembership, Customer, Order, OrderItem


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel

    id = factory.Sequence(lambda n: 100 + n)
    name = factory.Sequence(lambda n: f"Channel {n}")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    id = factory.Sequence(lambda n: 1000 + n)
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    first_name = "Ada"
    last_name = "Lovelace"


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    number = factory.Sequence(lambda n: f"ORD-{n:05d}")
    channel = factory.SubFactory(ChannelFactory)
    customer = factory.SubFactory(CustomerFactory)
    date_placed = factory.LazyFunction(timezone.now)
    status = OrderStatus.APPROVED
    currency = Currency.TRY
    amount = Decimal("150.00")


class OrderItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    product_sku = factory.Sequence(lambda n: f"SKU-{n}")
    price = Decimal("50.00")
    retail_price = Decimal("60.00")
    price_currency = Currency.TRY
    status = OrderStatus.APPROVED
    attributes = factory.LazyFunction(dict)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-123456")


def make_api_user(*, channels=(), can_capture=True, username=None, **kwargs):
    """A user with a token, the given channels and (by default) the capture permission."""
    user = UserFactory(**({"username": username} if username else {}), **kwargs)
    for channel in channels:
        ChannelMembership.objects.create(user=user, channel=channel)
    if can_capture:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="orders", codename="capture_order")
        )
    Token.objects.get_or_create(user=user)
    return user


def make_order(*, items=3, **kwargs) -> Order:
    order = OrderFactory(**kwargs)
    OrderItemFactory.create_batch(items, order=order)
    return order
