"""The admin's order and item forms keep the JSON fields the seed's `Order` declares as
objects (`extra_field`, `cancellation_info`) objects, as the import does (helper 124):
a list, a string or a number saved there is answered by every order and item read,
the capture's answer and its event, where the schema says `object`."""

import pytest

from tests.factories import make_order
from tests.orders.admin_pages import change_form, superuser_order_form

NOT_OBJECTS = {"list": "[1, 2]", "string": '"text"', "number": "5", "boolean": "true"}


@pytest.mark.parametrize("field", ["extra_field", "cancellation_info"])
@pytest.mark.parametrize("value", NOT_OBJECTS.values(), ids=NOT_OBJECTS.keys())
def test_the_order_form_refuses_json_that_is_not_an_object(client, channel, field, value):
    order = make_order(channel=channel, items=1)
    url, data = superuser_order_form(client, order)

    response = client.post(url, {**data, field: value})

    assert response.status_code == 200, "saved a non-object"  # the form again, with the error
    assert response.context["adminform"].form.errors[field]
    order.refresh_from_db()
    assert getattr(order, field) == {}


@pytest.mark.parametrize("value", NOT_OBJECTS.values(), ids=NOT_OBJECTS.keys())
def test_the_item_form_refuses_an_extra_field_that_is_not_an_object(client, channel, value):
    order = make_order(channel=channel, items=1)
    item = order.items.get()
    superuser_order_form(client, order)  # logs a superuser in
    url = f"/admin/orders/orderitem/{item.pk}/change/"
    data = change_form(client, url)

    response = client.post(url, {**data, "extra_field": value})

    assert response.status_code == 200, "saved a non-object"
    assert response.context["adminform"].form.errors["extra_field"]
    item.refresh_from_db()
    assert item.extra_field == {}
