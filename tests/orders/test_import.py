"""`manage.py import_orders FILE`: the contract every scenario is built with."""

import json
import subprocess
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from orders.importing import OrderImportSerializer
from orders.models import Channel, Customer, Order, OrderItem
from tests.api.seed import load_seed
from tests.live import ROOT, VENV_BIN, server_env


def document(**overrides):
    data = {
        "channels": [{"pk": 1, "name": "Web"}],
        "customers": [
            {"pk": 10, "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
        ],
        "orders": [
            {
                "number": "ORD-1", "channel": 1, "customer": 10,
                "date_placed": "2026-11-20T10:00:00Z", "amount": "150.00", "status": "400",
                "currency": "try", "shipping_company": "aras", "remote_addr": "10.1.2.3",
                "items": [
                    {"product_sku": "SKU-1", "price": "50.00", "status": "400",
                     "attributes": {"color": "red"}},
                    {"product_sku": "SKU-2", "price": "100.00"},
                ],
            },
            {
                "number": "ORD-2", "channel": 1, "customer": 10,
                "date_placed": "2026-11-21T10:00:00+03:00", "amount": "9.99", "status": "500",
                "currency": "eur", "items": [{"product_sku": "SKU-3", "price": "9.99"}],
            },
        ],
    }  # fmt: skip
    data.update(overrides)
    return data


def run_import(tmp_path, data):
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(data))
    out, err = StringIO(), StringIO()
    call_command("import_orders", str(path), stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def test_import_creates_orders_with_items_and_reports_their_pks(db, tmp_path):
    result, messages = run_import(tmp_path, document())

    order = Order.objects.get(number="ORD-1")
    items = list(order.items.order_by("pk"))
    assert result["skipped"] == []
    assert result["created"][0] == {
        "pk": order.pk,
        "number": "ORD-1",
        "channel": 1,
        "items": [{"pk": items[0].pk, "product_sku": "SKU-1"},
                  {"pk": items[1].pk, "product_sku": "SKU-2"}],
    }  # fmt: skip
    assert order.amount == Decimal("150.00")
    assert order.shipping_company == "aras"
    assert order.customer.email == "ada@example.com"
    assert items[0].attributes == {"color": "red"}
    # Items default to the order's currency and status.
    assert (items[1].price_currency, items[1].status) == ("try", "400")
    assert Order.objects.get(number="ORD-2").items.get().price_currency == "eur"
    assert "Imported 2 order(s)" in messages


def test_existing_orders_are_skipped_never_changed(db, tmp_path):
    run_import(tmp_path, document())
    changed = document()
    changed["orders"][0]["amount"] = "999.00"
    changed["channels"][0]["name"] = "Web Shop"

    result, _ = run_import(tmp_path, changed)

    assert result["created"] == []
    assert result["skipped"] == [{"number": "ORD-1", "channel": 1},
                                 {"number": "ORD-2", "channel": 1}]  # fmt: skip
    assert Order.objects.get(number="ORD-1").amount == Decimal("150.00")
    assert OrderItem.objects.count() == 3
    assert Channel.objects.get(pk=1).name == "Web Shop"  # channels are upserted


def test_existing_orders_are_found_among_more_numbers_than_a_statement_takes(db, tmp_path):
    """PostgreSQL takes at most 65,535 parameters in a statement: a file of 200,000
    orders failed at the end of its import. The numbers are looked up in batches."""
    from orders.services import _existing_orders

    run_import(tmp_path, document())
    numbers = sorted([f"NEW-{n}" for n in range(70_000)] + ["ORD-1", "ORD-2"])
    assert _existing_orders(numbers) == {(1, "ORD-1"), (1, "ORD-2")}


def test_existing_orders_are_found_at_either_end_of_a_batch_of_numbers(db, tmp_path):
    """The last number of one batch and the first of the next are both looked up: one
    missed was imported again, and the whole file failed on (number, channel)."""
    from orders.services import INSERT_BATCH, _existing_orders

    run_import(tmp_path, document())
    numbers = [f"A-{n:05}" for n in range(INSERT_BATCH - 1)] + ["ORD-1", "ORD-2"]
    assert numbers.index("ORD-1") == INSERT_BATCH - 1
    assert _existing_orders(numbers) == {(1, "ORD-1"), (1, "ORD-2")}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["orders"][1]["items"][0].update(price="abc"),
         "orders[1].items[0].price: A valid number is required."),
        (lambda d: d["orders"][0].update(status="999"),
         'orders[0].status: "999" is not a valid choice.'),
        (lambda d: d["orders"][0].update(colour="red"), "orders[0].colour: Unknown field."),
        (lambda d: d["orders"][1].update(channel=7), "orders[1].channel: Unknown channel 7."),
        (lambda d: d["orders"][1].update(number="ORD-1"),
         "orders[1].number: Order ORD-1 of channel 1 is also orders[0]."),
        (lambda d: d["customers"][0].update(email="nope"),
         "customers[0].email: Enter a valid email address."),
        (lambda d: d["orders"][0]["items"][0].update(attributes=["red"]),
         "orders[0].items[0].attributes: Must be a JSON object."),
        # A capture's amount adds its items' prices up, in the order's currency.
        (lambda d: d["orders"][1]["items"][0].update(price="-0.01"),
         "orders[1].items[0].price: Ensure this value is greater than or equal to 0."),
        (lambda d: d["orders"][0]["items"][0].update(price_currency="usd"),
         "orders[0].items[0].price_currency: Must be the order's currency (try)."),
        # What PostgreSQL's jsonb cannot store, and a pk twice: each was a traceback.
        (lambda d: d["orders"][0]["items"][0].update(attributes={"k": "a\u0000b"}),
         "orders[0].items[0].attributes: A NUL character (\\u0000) cannot be stored."),
        (lambda d: d["orders"][0].update(extra_field={"x": ["\ud800"]}),
         "orders[0].extra_field: A lone surrogate (U+D800) cannot be stored."),
        # Stored, but no admin page could read it back (RecursionError: 500).
        (lambda d: d["orders"][0]["items"][0].update(attributes={"a": json.loads("[" * 900 + "]" * 900)}),
         "orders[0].items[0].attributes: The value is nested more than 100 deep."),
        (lambda d: d["channels"].append({"pk": 1, "name": "Web again"}),
         "channels[1].pk: 1 is also channels[0]."),
        (lambda d: d["customers"].append({"pk": 10, "email": "b@example.com"}),
         "customers[1].pk: 10 is also customers[0]."),
        # Python's Decimal reads these as numbers; JSON's numbers are ASCII digits.
        (lambda d: d["orders"][1]["items"][0].update(price="1_000"),
         "orders[1].items[0].price: A valid number is required."),
        (lambda d: d["orders"][0].update(amount="١٢٣"),
         "orders[0].amount: A valid number is required."),
        (lambda d: d["orders"][0].update(amount="150.001"),
         "orders[0].amount: Ensure that there are no more than 2 decimal places."),
        (lambda d: d["orders"][0].update(amount="0150.00"),
         "orders[0].amount: A valid number is required."),
        (lambda d: d["orders"][0].update(amount=" 150.00"),
         "orders[0].amount: A valid number is required."),
        # Ids as the API reads them: other scripts' digits were channel 1, customer 10.
        (lambda d: d["orders"][0].update(channel="١"),
         "orders[0].channel: A valid integer is required."),
        (lambda d: d["customers"][0].update(pk="１０"),
         "customers[0].pk: A valid integer is required."),
        (lambda d: d["orders"][0].update(installment="3.0"),
         "orders[0].installment: A valid integer is required."),
        # Ids are positive, as the database's; an order's channel too, before it is looked up.
        (lambda d: d["channels"][0].update(pk=0),
         "channels[0].pk: Ensure this value is greater than or equal to 1."),
        (lambda d: d["orders"][0].update(channel=0),
         "orders[0].channel: Ensure this value is greater than or equal to 1."),
        # Longer than their columns: refused by name, not a database error's traceback.
        (lambda d: d["channels"][0].update(name="W" * 256),
         "channels[0].name: Ensure this field has no more than 255 characters."),
        (lambda d: d["customers"][0].update(email="a" * 64 + "@" + "b" * 62 + "." + "c" * 62
                                            + "." + "d" * 62 + ".com"),
         "customers[0].email: Ensure this field has no more than 254 characters."),
        (lambda d: d["orders"][0].update(cancellation_info=["late"]),
         "orders[0].cancellation_info: Must be a JSON object."),
        # A record that is not an object is named by its own path.
        (lambda d: d["orders"][0]["items"].append("SKU-9"),
         "orders[0].items[2]: Invalid data. Expected a dictionary, but got str."),
        (lambda d: d["orders"].append(7),
         "orders[2]: Invalid data. Expected a dictionary, but got int."),
    ],
)  # fmt: skip
def test_an_invalid_record_refuses_the_whole_file_and_is_named(db, tmp_path, mutate, expected):
    data = document()
    mutate(data)
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(data))
    err = StringIO()

    with pytest.raises(CommandError, match=r"Import refused: \d+ problem\(s\), listed above\."):
        call_command("import_orders", str(path), stdout=StringIO(), stderr=err)

    assert expected in err.getvalue().splitlines()
    assert (Order.objects.count(), Channel.objects.count(), Customer.objects.count()) == (0, 0, 0)


@pytest.mark.parametrize("written", ['"19.990"', '"19.99000"', '"1.999e1"', "19.990"])
def test_a_price_with_more_places_than_a_cent_takes_them_when_they_are_zeros(db, tmp_path, written):
    data = document()
    data["orders"][0]["items"][0]["price"] = "PRICE"
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(data).replace('"PRICE"', written))  # as written, JSON or text
    call_command("import_orders", str(path), stdout=StringIO(), stderr=StringIO())
    assert OrderItem.objects.get(product_sku="SKU-1").price == Decimal("19.99")


@pytest.mark.parametrize(
    ("content", "refusal"),
    [
        (b"[" * 100_000, "nested too deeply"),
        # The last of two lists was imported alone.
        (b'{"orders": [], "orders": []}', "not valid JSON: duplicate key 'orders'"),
        (b'{"channels": [{"pk": 1, "name": "\xff"}]}', "not valid JSON: 'utf-8' codec"),
    ],
)
def test_a_file_that_is_not_plain_json_is_refused_with_a_message(db, tmp_path, content, refusal):
    path = tmp_path / "file.json"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=refusal):
        call_command("import_orders", str(path), stdout=StringIO(), stderr=StringIO())
    assert not Channel.objects.exists()


def test_import_reads_stdin_in_a_real_process(transactional_db):
    result = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "import_orders", "-"],
        input=json.dumps(document()), cwd=ROOT, env=server_env(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)["created"]
    assert [order["number"] for order in created] == ["ORD-1", "ORD-2"]
    assert Order.objects.count() == 2
    # Invalid UTF-8 on stdin is the file's refusal, not lone surrogates in a field.
    result = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "import_orders", "-"],
        input=b'{"channels": [{"pk": 1, "name": "\xff"}]}', cwd=ROOT, env=server_env(),
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert b"- is not valid JSON: 'utf-8' codec" in result.stderr


DATE_TIME_WANTED = "an ISO 8601 date-time with its offset, such as 2026-11-22T09:00:00Z."


@pytest.mark.parametrize(
    ("delivery_range", "refusal"),
    [
        (
            {"start": "garbage", "end": 5},
            "start: " + DATE_TIME_WANTED,
        ),
        (
            {"start": "2026-11-22T12:00:00+03:00", "end": 5},
            "end: " + DATE_TIME_WANTED,
        ),
        (
            {"start": "2026-11-22"},
            "start: " + DATE_TIME_WANTED,
        ),  # a date alone
        (
            {"start": "2026-11-22T12:00:00"},
            "start: " + DATE_TIME_WANTED,
        ),  # no offset
        ({"start": "2026-02-30T12:00:00Z"}, "start: not a date-time of the calendar."),
        ({"from": "2026-11-22T12:00:00Z"}, "Only start and end, not 'from'."),
        (["2026-11-22T12:00:00Z"], "Must be a JSON object."),
    ],
)
def test_a_delivery_range_that_is_not_the_seeds_is_refused(db, tmp_path, delivery_range, refusal):
    """The seed's Order has `delivery_range: {start, end}`, both date-times; any object
    was stored, and the capture answered `{"start": "garbage", "end": 5}`."""
    data = document()
    data["orders"][0]["delivery_range"] = delivery_range
    err = StringIO()
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CommandError, match="Import refused"):
        call_command("import_orders", str(path), stdout=StringIO(), stderr=err)
    assert f"orders[0].delivery_range: {refusal}" in err.getvalue().splitlines(), err.getvalue()


def test_a_delivery_range_is_stored_in_utc_as_the_api_answers_date_times(db, tmp_path):
    data = document()
    data["orders"][0]["delivery_range"] = {"start": "2026-11-22T12:00:00+03:00",
                                           "end": "2026-11-23T09:30Z"}  # fmt: skip
    data["orders"][1]["delivery_range"] = {}
    run_import(tmp_path, data)
    assert Order.objects.get(number="ORD-1").delivery_range == {
        "start": "2026-11-22T09:00:00Z", "end": "2026-11-23T09:30:00Z"}  # fmt: skip
    assert Order.objects.get(number="ORD-2").delivery_range == {}


def test_the_import_takes_the_seeds_order_fields_but_those_the_database_sets():
    """The import takes every Order column but those it excludes: a column added to the
    model would become importable unseen (one the capture owns, say). A new column
    fails here until it is put in the seed's contract or in ORDER_IMPORT_EXCLUDE."""
    seed = set(load_seed()["components"]["schemas"]["Order"]["properties"])
    imported = set(OrderImportSerializer().fields)
    assert imported == seed - {"pk", "created_date", "modified_date"} | {"items"}


def test_an_order_number_is_per_channel_in_a_file_and_against_the_database(db, tmp_path):
    """(number, channel) is what identifies an order: ORD-1 of channel 2 is another
    order than ORD-1 of channel 1, in the same file or in a later one."""
    first = document()
    first["channels"].append({"pk": 2, "name": "App"})
    first["orders"][1]["number"], first["orders"][1]["channel"] = "ORD-1", 2
    result, _ = run_import(tmp_path, first)
    assert sorted((o["number"], o["channel"]) for o in result["created"]) == [
        ("ORD-1", 1), ("ORD-1", 2)]  # fmt: skip

    later = document(channels=[{"pk": 3, "name": "Marketplace"}])
    later["orders"][0]["channel"] = 3
    result, _ = run_import(tmp_path, later)
    assert [(o["number"], o["channel"]) for o in result["created"]] == [
        ("ORD-1", 3), ("ORD-2", 1)]  # fmt: skip
    assert result["skipped"] == []
    assert Order.objects.get(number="ORD-1", channel_id=3).items.count() == 2


def test_customers_are_upserted_by_pk(db, tmp_path):
    run_import(tmp_path, document())
    changed = document(orders=[])
    changed["customers"][0].update(email="ada@lovelace.example", last_name="King")
    run_import(tmp_path, changed)
    customer = Customer.objects.get(pk=10)
    assert (customer.email, customer.last_name) == ("ada@lovelace.example", "King")


@pytest.mark.parametrize(("depth", "refused"), [(100, False), (101, True)])
def test_a_json_field_is_taken_nested_up_to_100_deep(db, tmp_path, depth, refused):
    """`attributes` itself counts as one: 100 objects and arrays inside one another are
    taken, 101 are refused."""
    data = document()
    data["orders"][0]["items"][0]["attributes"] = {
        "a": json.loads("[" * (depth - 1) + "]" * (depth - 1))
    }
    if refused:
        path = tmp_path / "orders.json"
        path.write_text(json.dumps(data))
        err = StringIO()
        with pytest.raises(CommandError):
            call_command("import_orders", str(path), stdout=StringIO(), stderr=err)
        assert ("orders[0].items[0].attributes: The value is nested more than 100 deep."
                in err.getvalue().splitlines())  # fmt: skip
    else:
        run_import(tmp_path, data)
        assert (
            OrderItem.objects.get(product_sku="SKU-1").attributes
            == data["orders"][0]["items"][0]["attributes"]
        )


def test_a_reimport_updates_every_name_of_a_customer_and_counts_what_it_skipped(db, tmp_path):
    """Customers are upserted by pk, all three of email, first and last name; the
    message on stderr counts the orders created and those skipped as existing."""
    _, first = run_import(tmp_path, document())
    assert "Imported 2 order(s), skipped 0 existing." in first
    changed = document()
    changed["customers"][0].update(first_name="Augusta", last_name="King")
    _, again = run_import(tmp_path, changed)
    customer = Customer.objects.get(pk=10)
    assert (customer.first_name, customer.last_name) == ("Augusta", "King")
    assert "Imported 0 order(s), skipped 2 existing." in again


@pytest.mark.parametrize(
    ("field", "written"),
    [("price", '"19.991"'), ("price", "19.991"), ("price", '"1.9991e1"'), ("price", '"0.001"'),
     ("discount_amount", "0.005"), ("tax_rate", '"18.005"')],
)  # fmt: skip
def test_a_money_value_with_more_places_than_its_column_is_refused_not_cut(
    db, tmp_path, field, written
):
    """19.991 is not 19.99: cutting (or rounding) the extra place would import another
    amount than the shop's, unseen. It is refused, named by its path, and nothing is
    written; only extra zeros are taken (the test above)."""
    data = document()
    data["orders"][0]["items"][0][field] = "VALUE"
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(data).replace('"VALUE"', written))  # as written, JSON or text
    err = StringIO()
    with pytest.raises(CommandError, match="Import refused: 1 problem"):
        call_command("import_orders", str(path), stdout=StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        f"orders[0].items[0].{field}: Ensure that there are no more than 2 decimal places."
    ]
    assert not OrderItem.objects.exists()
