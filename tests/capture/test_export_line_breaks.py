"""The reconciliation export against a spreadsheet that splits cells on `;` (helper
117's finding): a line break starts a new row there, as `;` starts a new cell, so a
formula right after one runs too."""

import csv
import io

import pytest

from tests.helpers import capture

URL = "/api/v1/captures/"


@pytest.mark.parametrize(
    ("sku", "written"),
    [("SKU-1\n=1+1", "SKU-1\n'=1+1"), ("SKU-1\r\n@SUM(A1)", "SKU-1\r\n'@SUM(A1)"),
     ("SKU-1\r-2+3", "SKU-1\r'-2+3")],
)  # fmt: skip
def test_a_formula_after_a_line_break_in_a_cell_is_exported_as_text(api_client, order, sku,
                                                                    written):  # fmt: skip
    """A SKU (or an order number) comes from the shop's systems through the import or
    the admin, where a line break is allowed. csv quotes such a cell, but a spreadsheet
    that splits on `;` reads the file's `,` as text, so the quotes open no quoted cell
    there: the line after the break is a row of its own, starting with the formula
    (`=1+1` ran). The export writes `k;'=1+1` for the `;` itself; a line break is the
    same kind of split."""
    item = order.items.first()
    item.product_sku = sku
    item.save(update_fields=["product_sku"])
    assert capture(api_client, order, [item.pk]).status_code == 200
    response = api_client.get(f"{URL}?format=csv")
    body = b"".join(response.streaming_content).decode()
    _, row = list(csv.reader(io.StringIO(body, newline="")))
    assert row[5] == written
    # Read as a `;` spreadsheet reads it: no line of the file starts a formula.
    for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        assert not line.startswith(("=", "+", "-", "@")), line
