"""Constraints that PostgreSQL enforces, whatever code writes the rows."""

import pytest
from django.db import IntegrityError, transaction

from orders.models import Order
from orders.selectors import order_list_for_user
from tests.factories import ChannelFactory, OrderFactory, make_api_user, make_order


def test_order_number_is_unique_within_a_channel(channel):
    OrderFactory(number="ORD-1", channel=channel)
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.bulk_create(
            [
                OrderFactory.build(
                    number="ORD-1", channel=channel, customer=Order.objects.get().customer
                )
            ]
        )


def test_the_same_number_may_exist_in_another_channel(channel):
    OrderFactory(number="ORD-1", channel=channel)
    OrderFactory(number="ORD-1", channel=ChannelFactory())
    assert Order.objects.filter(number="ORD-1").count() == 2


def test_modified_date_is_maintained_on_save(channel):
    order = OrderFactory(channel=channel)
    created, modified = order.created_date, order.modified_date
    order.notes = "ring twice"
    order.save()
    order.refresh_from_db()
    assert order.created_date == created
    assert order.modified_date > modified


def test_users_see_only_the_orders_of_their_channels(channel):
    mine = make_order(channel=channel, items=1)
    theirs = make_order(channel=ChannelFactory(), items=1)
    user = make_api_user(channels=[channel])
    superuser = make_api_user(is_superuser=True)
    stranger = make_api_user()

    assert list(order_list_for_user(user=user)) == [mine]
    assert set(order_list_for_user(user=superuser)) == {mine, theirs}
    assert list(order_list_for_user(user=stranger)) == []
