"""The admin, who sees and does what: staff only, each member of staff their
channels' rows only, what takes a superuser, and what no page hands out."""

import pytest
from rest_framework.authtoken.models import Token

from capture.models import Capture
from orders.models import Customer
from tests.factories import (
    ChannelFactory,
    CustomerFactory,
    make_api_user,
    make_order,
)
from tests.orders.admin_pages import change_form, staff_with


def test_staff_see_only_orders_of_their_channels(client, operator, channel):
    mine = make_order(channel=channel, number="MINE-1")
    theirs = make_order(channel=ChannelFactory(), number="THEIRS-1")
    client.force_login(operator)

    listing = client.get("/admin/orders/order/").content.decode()
    assert "MINE-1" in listing
    assert "THEIRS-1" not in listing
    assert client.get(f"/admin/orders/order/{mine.pk}/change/").status_code == 200
    assert client.get(f"/admin/orders/order/{theirs.pk}/change/").status_code == 302


@pytest.mark.parametrize("path", ["orders/order", "capture/capture"])
def test_a_link_to_another_channel_shows_staff_of_one_channel_nothing(
    client, operator, channel, path
):
    """Django leaves out a filter of one choice, and then ignored its parameter: staff of
    one channel opening a link to another channel's rows saw all their own under it,
    and could export them as that channel's. A channel that cannot be one is a 400."""
    mine = make_order(channel=channel, number="MINE-1")
    theirs = make_order(channel=ChannelFactory(), number="THEIRS-1")
    for order in (mine, theirs):
        Capture.objects.create(order=order, user=operator, created_at=order.date_placed,
                               amount=0, currency="try")  # fmt: skip
    client.force_login(operator)
    url = f"/admin/{path}/"
    assert len(client.get(url).context["cl"].result_list) == 1  # its own
    own = client.get(f"{url}?channel__id__exact={channel.pk}").context["cl"].result_list
    assert len(own) == 1
    other = client.get(f"{url}?channel__id__exact={theirs.channel_id}")
    assert (other.status_code, len(other.context["cl"].result_list)) == (200, 0)
    assert client.get(f"{url}?channel__id__exact=abc").status_code == 400


def test_staff_move_no_item_into_another_channels_order(client, editor, channel):
    """An item's order was an editable raw-id field taking any order's pk: the item
    (and its capture) went to the other channel's order."""
    item = make_order(channel=channel, items=1).items.get()
    theirs = make_order(channel=ChannelFactory(), number="THEIRS-1", items=0)
    client.force_login(editor)
    url = f"/admin/orders/orderitem/{item.pk}/change/"
    data = change_form(client, url)
    assert "order" not in data  # an item's order is shown, not edited
    assert client.post(url, {**data, "order": theirs.pk}).status_code == 302
    item.refresh_from_db()
    assert item.order.channel_id == channel.pk

    response = client.post("/admin/orders/orderitem/add/",
                           {"order": theirs.pk, "product_sku": "X", "status": "400",
                            "price": "1.00", "price_currency": "try"})  # fmt: skip
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["order"]
    assert not theirs.items.exists()


def test_staff_add_orders_only_in_their_channels(client, editor, channel):
    other = ChannelFactory(name="Not-Theirs")
    client.force_login(editor)
    page = client.get("/admin/orders/order/add/")
    choices = [str(c) for c in page.context["adminform"].form.fields["channel"].queryset]
    assert choices == [str(channel)]
    data = {"number": "X-IN-OTHER", "channel": other.pk, "status": "400", "amount": "1.00",
            "currency": "try", "date_placed_0": "2026-11-29", "date_placed_1": "10:00:00"}  # fmt: skip
    response = client.post("/admin/orders/order/add/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["channel"]
    assert not other.orders.exists()


def test_a_raw_id_field_names_no_row_its_form_would_not_take(client, editor, channel):
    """Shown again after an error, the raw-id field named the order whose pk was
    posted: any channel's order number, by guessing pks."""
    theirs = make_order(channel=ChannelFactory(), number="THEIRS-SECRET")
    mine = make_order(channel=channel, number="MINE-SHOWN")
    client.force_login(editor)
    for order, shown in ((theirs, False), (mine, True)):
        response = client.post("/admin/orders/orderitem/add/",
                               {"order": order.pk, "price": "not a number"})  # fmt: skip
        assert response.status_code == 200
        assert (order.number in response.content.decode()) is shown


def test_admin_is_for_staff_only(client, channel):
    make_order(channel=channel, number="HIDDEN-1")
    user = make_api_user(channels=[channel], is_staff=False)
    client.force_login(user)
    response = client.get("/admin/orders/order/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_autocomplete_checks_permission_before_the_term(client, channel):
    """Staff who may not see channels learn nothing from the autocomplete, whatever the
    term holds."""
    client.force_login(make_api_user(channels=[channel], is_staff=True))
    for term in ("\x00", channel.name):
        response = client.get("/admin/autocomplete/", {"app_label": "orders", "term": term,
                              "model_name": "channelmembership", "field_name": "channel"})  # fmt: skip
        assert response.status_code == 403


def test_view_only_staff_see_no_shown_capture_field(client, operator, channel):
    order = make_order(channel=channel, items=1)
    client.force_login(operator)
    for url in (f"/admin/orders/order/{order.pk}/change/",
                f"/admin/orders/orderitem/{order.items.get().pk}/change/"):  # fmt: skip
        page = client.get(url)
        assert page.status_code == 200
        assert "Shown capture" not in page.content.decode()


def test_the_channel_filter_lists_only_the_staff_members_channels(client, operator, channel):
    """Django's filter listed every channel's name and id to staff of one channel."""
    other = ChannelFactory(name="Someone Else's Shop")
    second = ChannelFactory()
    operator.channel_memberships.create(channel=second)  # one channel: no filter at all
    make_order(channel=channel, items=1)
    client.force_login(operator)
    page = client.get("/admin/orders/order/").content.decode()
    assert f"channel__id__exact={channel.pk}" in page
    assert f"channel__id__exact={second.pk}" in page
    assert f"channel__id__exact={other.pk}" not in page
    assert "Someone Else" not in page
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    assert f"channel__id__exact={other.pk}" in client.get("/admin/orders/order/").content.decode()


def test_staff_who_may_not_view_customers_name_and_take_only_their_channels(client, channel):
    """The order form's customer took any customer's id, and the page of the form's
    error named that customer's email: every customer's, by counting up ids."""
    from django.contrib.auth.models import Permission

    from orders.models import Customer

    staff = make_api_user(channels=[channel], is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_order", "change_order", "view_orderitem"]))  # fmt: skip
    order = make_order(channel=channel, items=1)
    theirs = make_order(channel=ChannelFactory(), items=1).customer
    Customer.objects.filter(pk=theirs.pk).update(email="secret-buyer@example.com")
    client.force_login(staff)
    url = f"/admin/orders/order/{order.pk}/change/"
    data = change_form(client, url)
    refused = client.post(url, {**data, "customer": theirs.pk, "amount": "abc"})
    assert refused.status_code == 200
    assert "secret-buyer@example.com" not in refused.content.decode()
    assert refused.context["adminform"].form.errors["customer"]
    assert client.post(url, {**data, "notes": "kept"}).status_code == 302  # their own
    order.refresh_from_db()
    assert order.notes == "kept"
    assert order.customer_id != theirs.pk


def test_only_superusers_delete_customers_and_channels_or_grant_channels(client, channel):
    """A customer or a channel spans channels: the delete page of a customer listed, to
    staff of one channel, the orders of every channel the customer had bought in. And
    staff who could add a channel membership could give themselves any channel."""
    from django.contrib.auth.models import Permission

    other = ChannelFactory()
    order = make_order(channel=other, items=1)
    staff = make_api_user(channels=[channel], is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=[
        "view_customer", "delete_customer", "view_channel", "delete_channel",
        "view_channelmembership", "add_channelmembership", "change_channelmembership",
    ]))  # fmt: skip
    client.force_login(staff)
    customer_delete = f"/admin/orders/customer/{order.customer_id}/delete/"
    for url in (customer_delete, f"/admin/orders/channel/{other.pk}/delete/",
                "/admin/orders/channelmembership/add/"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 403, url
        assert order.number not in response.content.decode()
    response = client.post("/admin/orders/channelmembership/add/",
                           {"user": staff.pk, "channel": other.pk})  # fmt: skip
    assert response.status_code == 403
    assert list(staff.channel_memberships.values_list("channel_id", flat=True)) == [channel.pk]
    assert client.get(f"/admin/orders/customer/{order.customer_id}/change/").status_code == 200

    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    assert order.number in client.get(customer_delete).content.decode()  # protected: named


def test_staff_change_only_customers_who_buy_only_in_their_channels(client, channel):
    """Staff of channel A with the change permission on customers changed the email of
    a customer who bought only in channel B (an outside test)."""
    client.force_login(staff_with(channel, "view_customer", "change_customer"))
    mine = make_order(channel=channel, items=0).customer
    theirs = make_order(channel=ChannelFactory(), items=0).customer
    shared = make_order(channel=channel, items=0).customer
    make_order(channel=ChannelFactory(), customer=shared, items=0)
    new = CustomerFactory()  # no orders yet: added for an order of theirs
    for customer, allowed in ((mine, True), (new, True), (theirs, False), (shared, False)):
        form = {"email": f"changed-{customer.pk}@example.com", "first_name": "A",
                "last_name": "B"}  # fmt: skip
        client.post(f"/admin/orders/customer/{customer.pk}/change/", form)
        customer.refresh_from_db()
        assert (customer.email == form["email"]) is allowed, customer


def test_api_tokens_and_the_task_queue_are_for_superusers_only(client, channel):
    """Staff given the token permissions read every user's key (a superuser's included)
    and made keys for others; the task queue's jobs are every channel's deliveries."""
    superuser = make_api_user(is_superuser=True, is_staff=True)
    key = superuser.auth_token.key
    client.force_login(staff_with(channel, "view_tokenproxy", "add_tokenproxy",
                                  "change_tokenproxy", "delete_tokenproxy", "view_procrastinatejob",
                                  "change_procrastinatejob"))  # fmt: skip
    for url in ("/admin/authtoken/tokenproxy/", f"/admin/authtoken/tokenproxy/{superuser.pk}/change/",
                "/admin/authtoken/tokenproxy/add/", "/admin/procrastinate/procrastinatejob/"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 403, url
        assert key not in response.content.decode()
    other = make_api_user(channels=[])
    Token.objects.filter(user=other).delete()
    response = client.post("/admin/authtoken/tokenproxy/add/", {"user": other.pk})
    assert response.status_code == 403
    assert not Token.objects.filter(user=other).exists()

    client.force_login(superuser)  # who sees the list, with each key masked
    listed = client.get("/admin/authtoken/tokenproxy/").content.decode()
    assert f"API token of user {superuser.pk} (…{key[-4:]})" in listed
    assert key not in listed


def test_a_users_delete_page_shows_staff_no_api_key(client, channel):
    """DRF's Token prints as its key, and the delete page lists what goes with the user:
    staff who may delete users read any user's key, a superuser's included."""
    root = make_api_user(is_superuser=True, is_staff=True)
    client.force_login(staff_with(channel, "view_user", "delete_user"))
    page = client.get(f"/admin/auth/user/{root.pk}/delete/").content.decode()
    assert f"API token of user {root.pk}" in page
    assert root.auth_token.key not in page


def test_an_order_link_to_another_channel_names_no_order(client, operator, channel):
    """The items and captures lists' `?order=<pk>` filter shows the order's number: for
    another channel's order, staff of one channel are told of no such order."""
    theirs = make_order(channel=ChannelFactory(), number="THEIRS-1", items=1)
    client.force_login(operator)
    for path in ("orders/orderitem", "capture/capture"):
        response = client.get(f"/admin/{path}/?order={theirs.pk}")
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == []
        page = response.content.decode()
        assert "THEIRS-1" not in page
        assert "no such order" in page


def test_staff_give_no_one_a_channel_on_a_users_page(client, channel):
    """Channel memberships are the superusers' on a user's page too: staff who may
    change users and add memberships gave themselves another channel there."""
    from django.contrib.auth.models import Permission

    other = ChannelFactory()
    staff = staff_with(channel, "view_user", "change_user", "view_channelmembership",
                       "add_channelmembership", "change_channelmembership")  # fmt: skip
    staff.user_permissions.add(*Permission.objects.filter(codename="view_channel"))
    client.force_login(staff)
    url = f"/admin/auth/user/{staff.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    data = change_form(client, url)
    data.update({"channel_memberships-TOTAL_FORMS": "2",
                 "channel_memberships-1-channel": str(other.pk),
                 "channel_memberships-1-user": str(staff.pk)})  # fmt: skip
    client.post(url, data)
    assert list(staff.channel_memberships.values_list("channel_id", flat=True)) == [channel.pk]


def test_the_captures_channel_filter_lists_only_the_staff_members_channels(
    client, operator, channel
):
    make_order(channel=ChannelFactory(name="Not-Theirs"), items=1)
    client.force_login(operator)
    page = client.get("/admin/capture/capture/").content.decode()
    assert str(channel) in page
    assert "Not-Theirs" not in page


def test_staff_with_the_add_permission_add_customers(client, channel):
    """Staff add customers for their orders (only a delete is the superusers')."""
    client.force_login(staff_with(channel, "view_customer", "add_customer"))
    response = client.post("/admin/orders/customer/add/", {
        "id": 777_001, "email": "new@example.com", "first_name": "New", "last_name": "One"})  # fmt: skip
    assert response.status_code == 302
    assert Customer.objects.filter(pk=777_001, email="new@example.com").exists()
