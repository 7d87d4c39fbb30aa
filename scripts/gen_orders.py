"""Write an import document (see `manage.py import_orders`) with many orders, e.g.
python scripts/gen_orders.py --orders 10000 --items 5 > /tmp/orders.json"""

import argparse
import json
import sys


def document(*, orders: int, items: int, channels: int = 1, prefix: str = "GEN") -> dict:
    return {
        "channels": [{"pk": pk, "name": f"Channel {pk}"} for pk in range(1, channels + 1)],
        "customers": [{"pk": 1, "email": "bulk@example.com", "first_name": "Bulk"}],
        "orders": [
            {
                "number": f"{prefix}-{n:07d}",
                "channel": 1 + n % channels,
                "customer": 1,
                "date_placed": "2026-11-20T10:00:00Z",
                "amount": f"{items * 10}.00",
                "status": "400",
                "currency": "try",
                "items": [
                    {"product_sku": f"SKU-{i}", "price": "10.00", "attributes": {"slot": i}}
                    for i in range(items)
                ],
            }
            for n in range(orders)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--prefix", default="GEN")
    args = parser.parse_args()
    json.dump(
        document(orders=args.orders, items=args.items, channels=args.channels, prefix=args.prefix),
        sys.stdout,
    )


if __name__ == "__main__":
    main()
