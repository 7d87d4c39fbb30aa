"""Constraints that PostgreSQL enforces, whatever code writes the rows."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from orders.models import Order, OrderItem
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


@pytest.mark.parametrize("table", ["orders_order", "orders_orderitem"])
def test_modified_date_never_goes_back_whoever_writes_it(channel, table):
    """A writer takes its time before it waits for the row's lock (Django's auto_now,
    the ERP's PATCH, an admin save): one that waited behind a later change wrote its
    earlier time over it. The database keeps the later one; a later time is taken."""
    order = make_order(channel=channel, items=1)
    row = order.pk if table == "orders_order" else order.items.get().pk
    model = Order if table == "orders_order" else OrderItem
    stored = model.objects.get(pk=row).modified_date
    with connection.cursor() as cursor:
        back = f"UPDATE {table} SET modified_date = modified_date - interval '1 hour' WHERE id = %s"
        cursor.execute(back, [row])
    assert model.objects.get(pk=row).modified_date == stored
    model.objects.filter(pk=row).update(modified_date=stored + timedelta(seconds=1))
    assert model.objects.get(pk=row).modified_date == stored + timedelta(seconds=1)


def test_users_see_only_the_orders_of_their_channels(channel):
    mine = make_order(channel=channel, items=1)
    theirs = make_order(channel=ChannelFactory(), items=1)
    user = make_api_user(channels=[channel])
    superuser = make_api_user(is_superuser=True)
    stranger = make_api_user()

    assert list(order_list_for_user(user=user)) == [mine]
    assert set(order_list_for_user(user=superuser)) == {mine, theirs}
    assert list(order_list_for_user(user=stranger)) == []
