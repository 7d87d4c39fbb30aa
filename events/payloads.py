"""An event's payload, as webhooks and the event feed send it (Standard Webhooks):

    {"type": "order.captured", "timestamp": "<ISO 8601 UTC>", "data": {...}}

Rendered once, the first time it is needed, from the rows the event describes, then
stored with the event: every retry and every read sends the same bytes."""

from django.db import connection
from rest_framework import serializers

from omnitron import exactjson
from omnitron.api.renderers import render_json

from .models import Event
from .registry import EVENT_TYPES
from .sql import EVENTS


def event_payloads(events: list[Event]) -> dict[str, str]:
    """{event id: payload}, rendering and storing those not rendered yet."""
    stored = {event.id: event.payload for event in events if event.payload is not None}
    return {**stored, **store_payloads(render_payloads(events))}


def render_payloads(events: list[Event]) -> dict[str, str]:
    """{event id: payload} of the events not rendered yet (nothing is stored)."""
    rendered = {}
    missing = [event for event in events if event.payload is None]
    for type_name in {event.type for event in missing}:
        batch = [event for event in missing if event.type == type_name]
        data = EVENT_TYPES[type_name].render(batch)
        for event in batch:
            payload = {"type": event.type, "timestamp": _utc(event.created_at),
                       "data": data[event.id]}  # fmt: skip
            rendered[event.id] = render_json(payload).decode()
    return rendered


def feed_item(event: Event, payload: str) -> dict:
    """An event as the event feed answers it: its id and channel, then the payload."""
    body = exactjson.loads(payload)
    return {"id": event.id, "type": body["type"], "timestamp": body["timestamp"],
            "channel": event.channel_id, "data": body["data"]}  # fmt: skip


def store_payloads(rendered: dict[str, str]) -> dict[str, str]:
    """Store payloads; one another process stored first wins, so all send the same.
    Returns {event id: the stored payload}."""
    if not rendered:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {EVENTS} e SET payload = coalesce(e.payload, r.payload)
              FROM unnest(%s::text[], %s::text[]) AS r(id, payload)
             WHERE e.id = r.id
            RETURNING e.id, e.payload
            """,
            [list(rendered), list(rendered.values())],
        )
        return dict(cursor.fetchall())


def _utc(moment) -> str:
    """As the API writes every date-time: ISO 8601 in UTC, with Z."""
    return serializers.DateTimeField().to_representation(moment)
