"""Staff of one channel, as the admin's tests log in (tests/orders/test_admin_*.py)."""

import pytest

from tests.orders.admin_pages import staff_with


@pytest.fixture
def operator(channel):
    """Staff of one channel who may view orders, items and captures."""
    return staff_with(channel, "view_order", "view_orderitem", "view_capture")


@pytest.fixture
def editor(channel):
    """Staff of one channel who may add and change orders and items."""
    return staff_with(channel, "view_order", "add_order", "change_order", "view_orderitem",
                      "add_orderitem", "change_orderitem", "view_customer")  # fmt: skip
