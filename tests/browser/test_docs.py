"""Integrators on the docs pages, in a real browser, with no internet."""

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import save_docs_image
from tests.browser.scenario import create_api_user, import_orders

pytestmark = pytest.mark.browser


def test_swagger_ui_authorizes_and_captures_a_real_order_offline(page, app_server, tmp_path):
    created = import_orders(tmp_path, [
        {"number": "ORD-DOCS-1", "amount": "60.00", "status": "450",
         "items": [{"product_sku": "BOOK", "price": "25.00"}, {"product_sku": "PEN", "price": "35.00"}]},
    ])  # fmt: skip
    token = create_api_user("integrator", "--channel", "1")
    book = created["ORD-DOCS-1"]["items"][0]["pk"]

    page.goto(f"{app_server}/api/docs/")
    operation = page.locator("#operations-CaptureOrder-v1_capture_order_create")
    expect(operation).to_contain_text("Capture Order")
    operation.locator(".opblock-summary").click()
    operation.locator(".opblock-section-request-body button", has_text="Schema").click()
    expect(operation.locator(".opblock-section-request-body")).to_contain_text(
        "CaptureOrderSerializer"
    )
    expect(operation.locator(".responses-wrapper")).to_contain_text("Order captured successfully")
    expect(page.locator("section.models")).to_contain_text("Order")

    page.locator(".auth-wrapper .authorize").click()
    page.locator(".modal-ux input[type=text]").fill(f"Token {token}")
    page.locator(".modal-ux button.authorize").click()
    page.locator(".modal-ux button.btn-done").click()

    operation.locator(".try-out__btn").click()
    body = {"order": "ORD-DOCS-1", "order_items": [{"pk": book, "attributes": {"packed": True}}]}
    operation.locator("textarea.body-param__text").fill(json.dumps(body))
    operation.locator("button.execute").click()
    live = operation.locator(".live-responses-table")
    expect(live.locator("tbody td.response-col_status").first).to_have_text("200")
    expect(live.locator("tbody td.response-col_description")).to_contain_text(
        '"number": "ORD-DOCS-1"'
    )
    expect(live.locator("tbody td.response-col_description")).to_contain_text('"status": "450"')
    live.scroll_into_view_if_needed()
    save_docs_image(page, "docs-capture.png")

    assert page.outside_requests == []


def test_redoc_renders_the_capture_operation_offline(page, app_server):
    page.goto(f"{app_server}/api/redoc/")
    expect(page.locator("body")).to_contain_text("Capture Order", timeout=30_000)
    expect(page.locator("body")).to_contain_text("/api/v1/capture-order/")
    assert page.outside_requests == []
