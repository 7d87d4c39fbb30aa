"""What the operators' admin lists cost: `python -m bench.admin_lists` (the app's
environment: DATABASE_URL and settings).

Opens each change list, a search and a filter through Django's test client (the
whole admin: middleware, session, queries, templates), as a superuser and as a staff
user who sees one channel, and prints JSON: per page and user, the median time of
five loads after a warm one, the number of statements and the slowest of them.
bench/bigdata.py runs it against the small and the big database."""

import json
import os
import statistics
import sys
import time

import django

PAGES = (
    "/admin/orders/order/",
    "/admin/orders/order/?status__exact=400",
    "/admin/orders/order/?q={number}",
    "/admin/orders/orderitem/",
    "/admin/capture/capture/",
    "/admin/capture/capture/?q={number}",
    "/admin/events/event/",
    "/admin/events/webhookdelivery/",
)
LOADS = 5


def main() -> None:
    sys.path.insert(0, os.getcwd())
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.test.utils import override_settings

    from orders.models import ChannelMembership, Order

    users = get_user_model()
    superuser, _ = users.objects.get_or_create(
        username="bench-admin", defaults={"is_superuser": True, "is_staff": True}
    )
    staff, created = users.objects.get_or_create(
        username="bench-staff", defaults={"is_staff": True}
    )
    newest = Order.objects.order_by("-date_placed", "-id").first()
    if created:
        staff.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
        ChannelMembership.objects.create(user=staff, channel_id=newest.channel_id)

    # Static files are not collected for this: plain asset URLs instead of the manifest's.
    plain_static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    with override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain_static}):
        print(json.dumps(measure(users=(superuser, staff), newest=newest)))


def measure(*, users, newest) -> list[dict]:
    """Each page for each user: median ms of LOADS after a warm load, statements."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    result = []
    for user in users:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        for page in PAGES:
            url = page.format(number=newest.number)
            timings = []
            for _ in range(1 + LOADS):
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    response = client.get(url, secure=True)
                    timings.append((time.perf_counter() - started) * 1000)
            if response.status_code == 403:  # events are for superusers only
                continue
            if response.status_code != 200:
                raise SystemExit(f"{url}: {response.status_code}")
            slowest = max(queries.captured_queries, key=lambda q: float(q["time"]))
            result.append({
                "user": "superuser" if user.is_superuser else "staff (one channel)",
                "page": page,
                "ms": round(statistics.median(timings[1:]), 1),
                "statements": len(queries.captured_queries),
                "slowest_ms": round(float(slowest["time"]) * 1000, 1),
            })  # fmt: skip
    return result


if __name__ == "__main__":
    main()
