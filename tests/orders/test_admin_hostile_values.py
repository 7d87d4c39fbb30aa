"""Hostile values sent to the admin's pages are 4xx or form errors, never a 500, and
a page any API client can make large costs what a small one does (helper 117's
findings)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_api_user, make_order
from tests.helpers import capture
from tests.orders.admin_pages import change_form


@pytest.mark.parametrize("field", ["price", "retail_price", "tax_rate", "discount_amount"])
@pytest.mark.parametrize("value", ["sNaN", "-sNaN", "snan1"])
def test_a_signalling_nan_in_an_items_amount_is_a_form_error_not_a_500(client, editor, channel,
                                                                       field, value):  # fmt: skip
    """Decimal('sNaN') is read by the form's DecimalField (its validation refuses it
    later), but OrderItemForm.clean asks has_changed() first, and comparing a signalling
    NaN raises decimal.InvalidOperation: a 500."""
    item = make_order(channel=channel, items=1).items.get()
    client.force_login(editor)
    url = f"/admin/orders/orderitem/{item.pk}/change/"
    form = change_form(client, url)
    form[field] = value
    client.raise_request_exception = False
    page = client.post(url, form)
    assert page.status_code == 200, page.status_code
    assert page.context["adminform"].form.errors[field]
    item.refresh_from_db()
    assert str(item.price) == "50.00"


@pytest.mark.parametrize("page", ["change", "delete"])
@pytest.mark.parametrize("query", ["_to_field=", "_to_field=&_popup=1"])
def test_an_empty_to_field_on_an_objects_page_is_not_a_500(client, operator, channel, page,
                                                           query):  # fmt: skip
    """Django checks `_to_field` only when it is not empty, then looks the empty name up
    as a field (`get_field('')`: FieldDoesNotExist, a 500) on every change and delete
    page, a view-only staff member's too."""
    order = make_order(channel=channel, items=1)
    client.force_login(operator)
    client.raise_request_exception = False
    for url in (f"/admin/orders/order/{order.pk}/{page}/",
                f"/admin/orders/orderitem/{order.items.get().pk}/{page}/"):  # fmt: skip
        response = client.get(f"{url}?{query}")
        assert response.status_code < 500, (url, response.status_code)


def test_an_empty_to_field_is_no_500_on_any_models_pages(client, channel, api_client):
    """Every model of the admin site, as a superuser: the same empty `_to_field`."""
    from django.contrib import admin

    order = make_order(channel=channel, items=1)
    assert capture(api_client, order, [order.items.get().pk]).status_code == 200
    superuser = make_api_user(is_superuser=True, is_staff=True)
    client.force_login(superuser)
    client.raise_request_exception = False
    pages = 0
    for model in admin.site._registry:
        for pk in model._default_manager.values_list("pk", flat=True)[:1]:
            base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/{pk}"
            for page in ("change", "delete"):
                response = client.get(f"{base}/{page}/?_to_field=")
                assert response.status_code < 500, (base, page, response.status_code)
                pages += 1
    assert pages >= 16  # orders, items, captures, users, tokens, channels, ...


def _capture_page(client, api_client, channel, items):
    order = make_order(channel=channel, items=items)
    pks = list(order.items.values_list("pk", flat=True))
    assert capture(api_client, order, pks).status_code == 200
    url = f"/admin/capture/capture/{order.captures.get().pk}/change/"
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url)
    assert page.status_code == 200
    return len(queries), page


def test_a_large_captures_admin_page_costs_what_a_small_ones_does(client, channel, api_client):
    """A capture holds up to 1,000 items, and any API client with the capture
    permission makes one. Its admin page lists every item as an inline row, each
    looking its order item up again (one query per row: 1,008 queries): 1,000 rows
    took 2 s on a quiet machine and 5 to 12 s on a busy one, and twelve views at once
    held every worker (another client's capture took 24 s). The order page avoids
    exactly this for its items and captures (MAX_INLINE_ROWS)."""
    from orders.admin import MAX_INLINE_ROWS

    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    small, _ = _capture_page(client, api_client, channel, 2)
    large, page = _capture_page(client, api_client, channel, MAX_INLINE_ROWS + 50)
    assert large <= small + 2, (small, large)
    rows = page.context["inline_admin_formsets"][0].formset.forms
    assert len(rows) == MAX_INLINE_ROWS
    assert f"{MAX_INLINE_ROWS + 50}: the first {MAX_INLINE_ROWS} are below" in page.text
