"""Reads of the events app: the event feed, through the user's channels."""

from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from orders.selectors import visible_to

from .models import Event
from .sql import SETTLED


def event_feed_for_user(*, user, after: str | None = None, type: str | None = None) -> QuerySet:
    """The events of the user's channels after the event `after`, oldest first.

    Only events of finished transactions are served: a transaction still running may
    commit an event that sorts before one committed already, and a poller that moved
    past the latter would never see it. So the feed never skips an event, and never
    serves one twice to a poller that passes the last id it got as `after`."""
    settled = RawSQL(SETTLED, [], output_field=BooleanField())
    events = Event.objects.alias(settled=settled).filter(settled=True)
    # The channels as values, written into the statement: a small channel's page is one
    # range of event_channel_id_idx, not a walk of every channel's events.
    events = visible_to(events, user)
    if after:
        events = events.filter(id__gt=after)
    if type:
        events = events.filter(type=type)
    return events.order_by("id")
