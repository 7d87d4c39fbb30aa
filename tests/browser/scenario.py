"""Scenario data, built the way an operator would: import_orders and create_api_user."""

import json
from io import StringIO

from django.core.management import call_command


def import_orders(tmp_path, orders: list[dict], channels=((1, "Web"),)) -> dict:
    document = {
        "channels": [{"pk": pk, "name": name} for pk, name in channels],
        "customers": [
            {"pk": 10, "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
        ],
        "orders": [
            {
                "channel": 1,
                "customer": 10,
                "date_placed": "2026-11-20T10:00:00Z",
                "currency": "try",
                **o,
            }
            for o in orders
        ],
    }
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(document))
    out = StringIO()
    call_command("import_orders", str(path), stdout=out, stderr=StringIO())
    return {order["number"]: order for order in json.loads(out.getvalue())["created"]}


def create_api_user(username: str, *options: str) -> str:
    out = StringIO()
    call_command("create_api_user", username, *options, stdout=out)
    return out.getvalue().strip()
