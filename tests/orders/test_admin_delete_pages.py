"""A delete page costs what it costs for a small object, however many orders protect
it (helper 124): a customer's delete page (superusers') listed every order it had
placed, 1 MB and 1.3 s for 14,000 orders through gunicorn, growing with them (a guest
customer of a year's orders: past gunicorn's 30 s, the worker killed)."""

from orders.models import Order
from tests.factories import CustomerFactory, OrderFactory, make_api_user


def _delete_page(client, customer):
    response = client.get(f"/admin/orders/customer/{customer.pk}/delete/")
    assert response.status_code == 200
    return response.content


def _orders_of(customer, channel, count):
    template = OrderFactory.build(channel=channel, customer=customer)
    fields = {f.attname: getattr(template, f.attname) for f in Order._meta.concrete_fields
              if not f.primary_key}  # fmt: skip
    Order.objects.bulk_create(
        Order(**{**fields, "number": f"{customer.pk}-{n:06d}"}) for n in range(count)
    )


def test_a_customers_delete_page_does_not_grow_with_its_orders(client, channel):
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    few, many = CustomerFactory(), CustomerFactory()
    _orders_of(few, channel, 5)
    _orders_of(many, channel, 1000)

    small, large = _delete_page(client, few), _delete_page(client, many)

    assert len(large) < 2 * len(small), (len(small), len(large))


def test_a_delete_page_names_ten_protecting_rows_and_deletes_nothing(client, channel):
    from orders.models import Channel, Customer

    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    customer, unused = CustomerFactory(), CustomerFactory()
    _orders_of(customer, channel, 25)
    for url in (f"/admin/orders/customer/{customer.pk}/delete/",
                f"/admin/orders/channel/{channel.pk}/delete/"):  # fmt: skip
        page = client.get(url).content.decode()
        assert page.count("<li>Order: ") == 10, url
        assert "<li>and more orders</li>" in page
        assert client.post(url, {"post": "yes"}).status_code == 200  # the page again
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert Channel.objects.filter(pk=channel.pk).exists()
    assert Order.objects.filter(customer=customer).count() == 25
    # Nothing protects it: deleted as before.
    answer = client.post(f"/admin/orders/customer/{unused.pk}/delete/", {"post": "yes"})
    assert answer.status_code == 302
    assert not Customer.objects.filter(pk=unused.pk).exists()


def _answers_of(user, count):
    from django.utils import timezone

    from capture.models import IdempotencyRecord

    IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(
            user=user,
            key=f"k-{n}",
            request_fingerprint="f",
            status_code=400,
            response_body="{}",
            created_at=timezone.now(),
        )  # fmt: skip
        for n in range(count)
    )


def test_a_users_delete_page_does_not_grow_with_what_the_delete_takes_along(client, db):
    """Rows that go with the user (its Idempotency-Key answers of the last day, its
    admin history) were each read and listed: 100,000 answers, 7 s and 4.5 MB (helper
    133). A hundred of a kind are listed, then "and more"; the delete takes them all."""
    from capture.models import IdempotencyRecord

    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    few, many = make_api_user(), make_api_user()
    _answers_of(few, 5)
    _answers_of(many, 1000)

    small = client.get(f"/admin/auth/user/{few.pk}/delete/").content.decode()
    large = client.get(f"/admin/auth/user/{many.pk}/delete/").content.decode()

    assert len(large) < 2 * len(small), (len(small), len(large))
    assert large.count("<li>Idempotency record: ") == 100
    assert "<li>and more idempotency records</li>" in large
    assert "<li>Idempotency records: 100+</li>" in large  # the summary
    answer = client.post(f"/admin/auth/user/{many.pk}/delete/", {"post": "yes"})
    assert answer.status_code == 302
    assert not IdempotencyRecord.objects.filter(user=many).exists()


def test_a_delete_page_listing_a_hundred_items_asks_for_the_permission_on_all(client, channel):
    """Staff who may delete orders but not items still may not delete an order with
    items, however many are left unlisted; with both, the order goes with every item."""
    from orders.models import OrderItem
    from tests.factories import OrderFactory, OrderItemFactory
    from tests.orders.admin_pages import staff_with

    order = OrderFactory(channel=channel)
    OrderItemFactory.create_batch(150, order=order)
    url = f"/admin/orders/order/{order.pk}/delete/"
    deleter = staff_with(channel, "view_order", "delete_order", "delete_orderitem")
    client.force_login(deleter)

    page = client.get(url).content.decode()

    assert page.count("<li>Order item: ") == 100
    assert "<li>and more order items</li>" in page
    client.force_login(staff_with(channel, "view_order", "delete_order", "view_orderitem"))
    page = client.get(url).content.decode()
    assert "permission to delete the following types of objects" in page
    assert "<li>order item</li>" in page
    assert client.post(url, {"post": "yes"}).status_code == 403
    client.force_login(deleter)
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not OrderItem.objects.filter(order_id=order.pk).exists()
