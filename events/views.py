from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from omnitron.api.schema import READ_ERRORS
from omnitron.db_router import ReplicaReadsMixin

from .payloads import event_payloads, feed_item
from .selectors import event_feed_for_user
from .serializers import EventFilterSerializer, EventPageSerializer

# The most payload characters a page of the feed holds: an event of an order of 1,000
# items is about 40,000, and 500 of them took 2.4 s and 21 MB. The page ends before
# the event that would pass it (the first always comes); `after` goes on from there.
MAX_PAGE_CHARACTERS = 1_000_000


def _page(events, limit: int) -> tuple[list, dict[str, str]]:
    """Up to `limit` events of the feed (a queryset in id order) and their payloads,
    up to MAX_PAGE_CHARACTERS. Events are read and their payloads rendered 10, 20,
    40... at a time, and no more once the page is full: reading 500 events of
    1,000-item orders at once fetched 30 MB of rows for a page of 25, and rendering
    them took over 30 s (the worker was killed). Each read goes on after the last
    event kept, as a poller's next page would."""
    kept, payloads, size, chunk = [], {}, 0, 10
    while len(kept) < limit:
        after = events.filter(id__gt=kept[-1].id) if kept else events
        batch = list(after[: min(chunk, limit - len(kept))])
        payloads.update(event_payloads(batch))
        for event in batch:
            size += len(payloads[event.id])
            if kept and size > MAX_PAGE_CHARACTERS:
                return kept, payloads
            kept.append(event)
        if len(batch) < chunk:
            break  # the feed has no more
        chunk *= 2
    return kept, payloads


class EventFeedView(ReplicaReadsMixin, APIView):
    """GET /api/v1/events/: for systems that cannot receive webhooks. Reads from the
    read replica when there is one; payloads rendered here are stored on the primary
    (events/payloads.py writes on `django.db.connection`)."""

    @extend_schema(
        summary="Event feed",
        description=(
            "The events of your channels, oldest first. Poll with `after` set to the last "
            "event id you got: no event is skipped or served twice. An event's `id` is the "
            "`webhook-id` of its webhook deliveries, so both can be de-duplicated together."
        ),
        tags=["Events"],
        parameters=[EventFilterSerializer],
        responses={200: EventPageSerializer, **READ_ERRORS},
    )
    def get(self, request):
        filters = EventFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        options = filters.validated_data
        feed = event_feed_for_user(
            user=request.user, after=options.get("after"), type=options.get("type")
        )
        events, payloads = _page(feed, options["limit"])
        next_url = None
        if events:
            query = request.query_params.copy()
            query["after"] = events[-1].id
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        results = [feed_item(event, payloads[event.id]) for event in events]
        return Response({"next": next_url, "results": results})
