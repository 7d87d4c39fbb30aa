"""Operators in the admin, in a real browser."""

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import save_docs_image
from tests.browser.scenario import create_api_user, import_orders

pytestmark = pytest.mark.browser

ITEMS = [
    {"product_sku": "TSHIRT-RED-M", "price": "149.90", "attributes": {"size": "M"}},
    {"product_sku": "JEANS-32", "price": "499.00"},
    {"product_sku": "SOCKS-3PK", "price": "89.50", "status": "100"},
]


def log_in(page, base, username, password):
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def test_an_operator_finds_an_order_and_sees_a_capture_made_through_the_api(
    page, app_server, tmp_path
):
    created = import_orders(tmp_path, [
        {"number": "ORD-ADMIN-1", "amount": "738.40", "status": "400", "items": ITEMS},
        {"number": "ORD-SHIPPED-1", "amount": "10.00", "status": "500",
         "items": [{"product_sku": "MUG", "price": "10.00"}]},
        {"number": "ORD-CANCELED-1", "amount": "10.00", "status": "100",
         "items": [{"product_sku": "CAP", "price": "10.00"}]},
    ])  # fmt: skip
    create_api_user("operator", "--staff", "--password", "op-pass-123", "--channel", "1")
    token = create_api_user("wms", "--channel", "1")
    tshirt, jeans, _socks = (item["pk"] for item in created["ORD-ADMIN-1"]["items"])

    log_in(page, app_server, "operator", "op-pass-123")
    page.goto(f"{app_server}/admin/orders/order/")
    page.fill("#searchbar", "ORD-ADMIN-1")
    page.press("#searchbar", "Enter")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("approved (400)")
    expect(rows.first).to_contain_text("0 / 3")
    rows.first.locator("th a").click()

    items = page.locator("#items-group")
    expect(items).to_contain_text("TSHIRT-RED-M")
    expect(items).to_contain_text("149.90")
    expect(items).to_contain_text("499.00")
    expect(items.locator("tr.form-row").nth(2)).to_contain_text("89.50")
    expect(page.locator("#captures-group")).not_to_contain_text("wms")

    captured = requests.post(
        f"{app_server}/api/v1/capture-order/",
        json={"order": "ORD-ADMIN-1", "order_items": [{"pk": tshirt}, {"pk": jeans}]},
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    assert captured.status_code == 200

    page.reload()
    rows = page.locator("#items-group tr.form-row")
    for index in (0, 1):  # captured_at is shown for the captured items only
        expect(rows.nth(index).locator("td.field-captured_at")).to_have_text(re.compile(r"\d{4}"))
    expect(rows.nth(2).locator("td.field-captured_at")).to_have_text("-")
    captures = page.locator("#captures-group")
    expect(captures).to_contain_text("wms")
    expect(captures).to_contain_text("648.90")
    expect(captures).to_contain_text(f"#{tshirt}, #{jeans}")
    # The audit is read-only: no inputs, no delete box, no "add another".
    expect(captures.locator("input:not([type=hidden]), textarea, select")).to_have_count(0)
    expect(captures.locator("a.addlink:visible")).to_have_count(0)
    page.locator("#items-group").scroll_into_view_if_needed()
    page.evaluate("document.querySelector('#items-group').scrollIntoView()")
    save_docs_image(page, "admin-order.png")

    page.goto(f"{app_server}/admin/orders/order/")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    page.locator("#changelist-filter a", has_text="shipped").first.click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("ORD-SHIPPED-1")


def test_non_staff_and_anonymous_visitors_see_no_order(page, app_server, tmp_path):
    import_orders(tmp_path, [{"number": "ORD-SECRET-1", "amount": "5.00", "status": "400",
                              "items": [{"product_sku": "X", "price": "5.00"}]}])  # fmt: skip
    create_api_user("clerk", "--password", "clerk-pass-123", "--channel", "1")

    page.goto(f"{app_server}/admin/orders/order/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    expect(page.locator("body")).not_to_contain_text("ORD-SECRET-1")

    log_in(page, app_server, "clerk", "clerk-pass-123")
    expect(page.locator(".errornote")).to_contain_text("staff account")
    page.goto(f"{app_server}/admin/orders/order/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    expect(page.locator("body")).not_to_contain_text("ORD-SECRET-1")
