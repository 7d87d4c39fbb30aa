"""bench/pgcost.py builds its pgbench statements from the app's own SQL: a change to
the capture's statements that its variants no longer fit fails here, not in make
bench."""

from bench import pgcost


def test_the_pgbench_statements_are_the_apps_with_every_placeholder_filled():
    sql = pgcost.statements()
    assert sql["read"].endswith(" \\gset")
    assert sql["read"].startswith("WITH token_user AS (")
    variants = [name for name in sql if name not in ("read", "baseline")]
    assert variants[0] == "capture"
    assert len({sql[name] for name in variants}) == len(variants)  # each leaves a part out
    for text in sql.values():
        assert "%(" not in text
    assert "events_event" not in sql["without the order.captured event"]
    assert "events_webhookdelivery" not in sql["without the webhook deliveries' CTEs"]
    assert "to_jsonb(updated)" not in sql["without the event's order snapshot"]
