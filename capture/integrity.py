"""The capture audit's own checks, run by `manage.py check_captures`: the audit adds
up (AUDIT_CHECKS), and the database triggers that keep captured records as they were
are in place and as the migrations made them (GUARD_TRIGGERS)."""

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from events.sql import EVENTS

from .sql import CAPTURE_ITEMS, CAPTURES, ITEMS, ORDER_CAPTURED, ORDERS

# The triggers that keep the audit true whatever writes to the database (capture's
# migrations 0004, 0007, 0009, 0010 and 0011, orders' 0008 and 0011): a capture and
# its items never change, a captured item keeps its order, price, currency, capture
# time and SKU, a capturer their username, and captures and items their order's
# channel. Each with its table and the digest of what it does (GUARD_DIGEST: when it
# fires, on which columns' updates and under what condition, and the function it
# runs, by name, body and settings), which a test ties to a freshly migrated
# database: a migration that changes a trigger changes its digest here. With them, the
# other triggers the migrations put on those tables (orders' 0012: an order's or item's
# modified_date never goes back), checked the same way: a trigger on a guarded table
# can change a row after a guard let it by.
GUARD_TRIGGERS = {
    "capture_immutable": (CAPTURES, "42d3d55ee9be6d557fa7ad9757f20e0d"),
    "capture_item_immutable": (CAPTURE_ITEMS, "42d3d55ee9be6d557fa7ad9757f20e0d"),
    "capture_channel": (CAPTURES, "5881ed470641f6b9d48b529217078d10"),
    "captured_item_fixed": (ITEMS, "8623db94121fb94204b2914f44bdfe3d"),
    "captured_item_sku_fixed": (ITEMS, "0b80f05f443c40e0bfd5a6cda28381a2"),
    "capturer_username_fixed": (
        get_user_model()._meta.db_table,
        "ecba7b5aaa15aa101b2c9f5ba9138281",
    ),
    "item_channel": (ITEMS, "9e4e403812bcf83bff8a65ef61981e86"),
    "order_channel_fixed": (ORDERS, "ca3b84e2987bd88455f63b577d00c819"),
    "item_modified_date_kept": (ITEMS, "f094969102ade578eaecd652b7da0d3d"),
    "order_modified_date_kept": (ORDERS, "f094969102ade578eaecd652b7da0d3d"),
}
# Of a pg_trigger row `t` and its function's pg_proc row `p`, as a restore keeps them:
# its timing and events (tgtype), the columns an UPDATE OF names (by name), its WHEN
# condition (as PostgreSQL writes it back), and its function's name, source, whether
# it runs as its owner, and its settings (the search_path a guard that reads a table
# is pinned to, omnitron/db/functions.py, with the schema's own name left out).
GUARD_DIGEST = """md5(concat_ws(' ', t.tgtype, p.proname, p.prosrc,
    (SELECT string_agg(a.attname, ',' ORDER BY a.attname) FROM pg_attribute a
      WHERE a.attrelid = t.tgrelid AND a.attnum = ANY(t.tgattr)),
    substring(pg_get_triggerdef(t.oid) FROM ' WHEN (.*) EXECUTE '),
    p.prosecdef, replace(array_to_string(p.proconfig, ' '),
                         'search_path=' || quote_ident(current_schema()) || ', ',
                         'search_path=SCHEMA, ')))"""
_GUARDS = ", ".join(
    f"('{name}', '{table}', '{digest}')" for name, (table, digest) in GUARD_TRIGGERS.items()
)
_GUARDED = ", ".join(sorted({f"'{table}'::regclass" for table, _ in GUARD_TRIGGERS.values()}))
_GUARD_PAIRS = ", ".join(
    f"('{name}', '{table}'::regclass)" for name, (table, _) in GUARD_TRIGGERS.items()
)

# The audit adds up: each query lists the ids of the rows that break one invariant.
AUDIT_CHECKS = {
    "capture amount is not the sum of its items' prices": f"""
        SELECT c.id FROM {CAPTURES} c
          LEFT JOIN {CAPTURE_ITEMS} ci ON ci.capture_id = c.id
         GROUP BY c.id, c.amount HAVING c.amount IS DISTINCT FROM coalesce(sum(ci.price), -1)""",
    "capture item's price or currency is not its order item's": f"""
        SELECT ci.id FROM {CAPTURE_ITEMS} ci
          JOIN {CAPTURES} c ON c.id = ci.capture_id
          JOIN {ITEMS} i ON i.id = ci.order_item_id
         WHERE ci.price <> i.price OR c.currency <> i.price_currency""",
    "capture item belongs to another order than its capture": f"""
        SELECT ci.id FROM {CAPTURE_ITEMS} ci
          JOIN {CAPTURES} c ON c.id = ci.capture_id
          JOIN {ITEMS} i ON i.id = ci.order_item_id
         WHERE i.order_id <> c.order_id""",
    "capture's channel is not its order's": f"""
        SELECT c.id FROM {CAPTURES} c
          JOIN {ORDERS} o ON o.id = c.order_id
         WHERE c.channel_id <> o.channel_id""",
    "capture's currency is not its order's": f"""
        SELECT c.id FROM {CAPTURES} c
          JOIN {ORDERS} o ON o.id = c.order_id
         WHERE c.currency <> o.currency""",
    "order item's channel is not its order's (its channel's lists would show it wrongly)": f"""
        SELECT i.id FROM {ITEMS} i
          JOIN {ORDERS} o ON o.id = i.order_id
         WHERE i.channel_id <> o.channel_id""",
    # A capture refuses such an item (order_item_price_invalid); releases before
    # orders/0009 imported them, and the upgrade left them as they were.
    "order item with a negative price (a capture refuses it: correct its price)": f"""
        SELECT i.id FROM {ITEMS} i WHERE i.price < 0""",
    "captured item without a capture item, or the other way round": f"""
        SELECT i.id FROM {ITEMS} i
          LEFT JOIN {CAPTURE_ITEMS} ci ON ci.order_item_id = i.id
         WHERE (i.captured_at IS NULL) <> (ci.id IS NULL)""",
    # Webhooks and the event feed tell the payment service and the ERP of a capture
    # through its event, written in the capture's own statement.
    f"capture without exactly one {ORDER_CAPTURED} event (no webhook, not in the feed)": f"""
        SELECT c.id FROM {CAPTURES} c
          LEFT JOIN {EVENTS} e ON e.type = '{ORDER_CAPTURED}' AND e.object_id = c.id
         GROUP BY c.id HAVING count(e.id) <> 1""",
    # The feed and the webhooks' channel filter go by the event's channel: another
    # channel's users would read the capture, and its own would never hear of it.
    f"{ORDER_CAPTURED} event whose channel is not its capture's": f"""
        SELECT e.id FROM {EVENTS} e
          JOIN {CAPTURES} c ON c.id = e.object_id
         WHERE e.type = '{ORDER_CAPTURED}' AND e.channel_id IS DISTINCT FROM c.channel_id""",
    f"{ORDER_CAPTURED} event of no capture": f"""
        SELECT e.id FROM {EVENTS} e
          LEFT JOIN {CAPTURES} c ON c.id = e.object_id
         WHERE e.type = '{ORDER_CAPTURED}' AND c.id IS NULL""",
    # The feed serves events in id order once their transaction id is below every
    # running one's; ids written before a restore from a dump (which starts the
    # transaction ids again) are above them: docs/operations.md says what to do.
    "event whose transaction id is ahead of the database's (restored from a dump?): "
    "the event feed serves nothing after it": f"""
        SELECT e.id FROM {EVENTS} e
         WHERE e.txid >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint
           AND e.txid IS DISTINCT FROM pg_current_xact_id_if_assigned()::text::bigint""",
    # Not rows: the guards themselves. A trigger dropped or disabled (by hand, or a
    # restore without them) lets a write change what the audit adds up from.
    "trigger that keeps captured records as they were is missing, disabled or changed "
    "(the database would take changes to them)": f"""
        SELECT guard.name FROM (VALUES {_GUARDS}) AS guard (name, relation, digest)
         WHERE NOT EXISTS (
               SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                WHERE t.tgname = guard.name AND t.tgrelid = to_regclass(guard.relation)
                  AND t.tgenabled IN ('O', 'A') AND {GUARD_DIGEST} = guard.digest)""",
    # Another trigger on a guarded table can change a row after a guard let it by; a
    # rule can send a write elsewhere, an inheriting table hold rows no guard watches.
    "trigger, rule or inheriting table on a guarded table that the migrations did not "
    "make (it may change what the guards keep)": f"""
        SELECT t.tgname FROM pg_trigger t
         WHERE NOT t.tgisinternal AND t.tgrelid IN ({_GUARDED})
           AND (t.tgname, t.tgrelid) NOT IN ({_GUARD_PAIRS})
        UNION ALL
        SELECT r.rulename FROM pg_rewrite r WHERE r.ev_class IN ({_GUARDED})
        UNION ALL
        SELECT i.inhrelid::regclass::text FROM pg_inherits i
         WHERE i.inhparent IN ({_GUARDED})""",
    # session_replication_role = replica fires no ordinary trigger: set for the database
    # or a role, or for the server, every session of it writes past the guards.
    "session_replication_role set to replica for this database, a role or the server "
    "(no guard fires in their sessions)": """
        SELECT concat_ws(' on ', coalesce(r.rolname, 'every role'),
                         coalesce(d.datname, 'every database'))
          FROM pg_db_role_setting s
          LEFT JOIN pg_roles r ON r.oid = s.setrole
          LEFT JOIN pg_database d ON d.oid = s.setdatabase
         WHERE (s.setdatabase = 0 OR d.datname = current_database())
           AND EXISTS (SELECT 1 FROM unnest(s.setconfig) AS setting
                        WHERE setting ~* '^session_replication_role=replica$')
        UNION ALL
        SELECT 'the server (' || source || ')' FROM pg_settings
         WHERE name = 'session_replication_role' AND reset_val = 'replica'
           AND source NOT IN ('database', 'user', 'database user')""",
}


# The ids each line names at most (the lowest); a line with more ends "and more".
SHOWN_IDS = 20


def capture_audit_problems() -> list[str]:
    """Every broken invariant of the capture audit, one line each (ids, at most
    SHOWN_IDS per kind, or the missing triggers' names); an empty list when the
    captures add up."""
    problems = []
    # Each check reads whole tables: the statement timeout is for requests (15 s by
    # default), and at some millions of items a check would pass it.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        for name, sql in AUDIT_CHECKS.items():
            cursor.execute(f"{sql} ORDER BY 1 LIMIT {SHOWN_IDS + 1}")  # the lowest ids
            ids = [str(row[0]) for row in cursor.fetchall()]
            if ids:
                more = ", and more" if len(ids) > SHOWN_IDS else ""
                problems.append(f"{name}: {', '.join(ids[:SHOWN_IDS])}{more}")
    return problems
