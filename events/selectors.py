"""Reads of the events app: the event feed, through the user's channels, in pages."""

from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from omnitron.api.throttling import reads_for_rows
from orders.selectors import visible_to

from .models import Event
from .payloads import event_payloads
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


def event_feed_page(
    *, user, after: str | None, type: str | None, limit: int
) -> tuple[list[Event], dict[str, str]]:
    """A page of the user's feed: up to `limit` events after `after` (of `type`), and
    their payloads by event id (rendered now for those that have none stored yet, at
    most FIRST_RENDERINGS_PER_READ for each read the page counts as)."""
    renderings = FIRST_RENDERINGS_PER_READ * reads_for_rows(limit)
    return _page(event_feed_for_user(user=user, after=after, type=type), limit, renderings)


# The most payload characters a page of the feed holds: an event of an order of 1,000
# items is 40,000 to 100,000, and 500 of the smaller ones took 2.4 s and 21 MB. The
# page ends before the event that would pass it (the first always comes); `after` goes
# on from there.
MAX_PAGE_CHARACTERS = 1_000_000
# The most payloads a page renders for the first time (events no webhook and no read
# of the feed has rendered yet: all of them, in a shop without webhooks whose feed was
# never read), for each read it counts toward the user's limit (its `limit` by 50s:
# omnitron/api/throttling.py's read_cost). Rendering one costs about three times
# serving it: one token's pages of 500 never rendered took every worker while it
# stayed under its read limit (an outside test). The page ends after them; `after`
# goes on from there.
FIRST_RENDERINGS_PER_READ = 5


def _page(events: QuerySet, limit: int, most_renderings: int) -> tuple[list[Event], dict[str, str]]:
    """Up to `limit` events of the feed (a queryset in id order) and their payloads,
    up to MAX_PAGE_CHARACTERS and `most_renderings` first renderings. Events are read and their
    payloads rendered 10, 20, 40... at a time, and no more once the page is full:
    reading 500 events of 1,000-item orders at once fetched 30 MB of rows for a page
    of 25, and rendering them took over 30 s (the worker was killed). Each read goes
    on after the last event kept, as a poller's next page would."""
    kept, payloads, size, chunk, renderings = [], {}, 0, 10, 0
    while len(kept) < limit:
        after = events.filter(id__gt=kept[-1].id) if kept else events
        batch = list(after[: min(chunk, limit - len(kept))])
        fetched = len(batch)
        batch = _within_renderings(batch, most_renderings - renderings)
        renderings += sum(event.payload is None for event in batch)
        payloads.update(event_payloads(batch))
        for event in batch:
            size += len(payloads[event.id])
            if kept and size > MAX_PAGE_CHARACTERS:
                return kept, payloads
            kept.append(event)
        if fetched < chunk or renderings >= most_renderings:
            break  # the feed has no more, or the page rendered all it may
        chunk *= 2
    return kept, payloads


def _within_renderings(batch: list[Event], left: int) -> list[Event]:
    """The batch up to and including its `left`-th event with no payload yet."""
    for index, event in enumerate(batch):
        if event.payload is None:
            left -= 1
            if left == 0:
                return batch[: index + 1]
    return batch
