from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from omnitron.api.schema import READ_ERRORS
from omnitron.api.throttling import (
    READ_SCOPE,
    AnswerSizeMixin,
    UserScopedRateThrottle,
    read_cost,
)
from omnitron.api.viewsets import paging_parameters, refuse_unknown_parameters
from omnitron.db.router import ReplicaReadsMixin

from .payloads import feed_item
from .selectors import event_feed_page
from .serializers import EventFilterSerializer, EventPageSerializer


class EventFeedView(AnswerSizeMixin, ReplicaReadsMixin, APIView):
    """GET /api/v1/events/: for systems that cannot receive webhooks. Reads from the
    read replica when there is one; payloads rendered here are stored on the primary
    (events/payloads.py writes on `django.db.connection`)."""

    throttle_classes = [UserScopedRateThrottle]
    throttle_scope = READ_SCOPE

    @property
    def throttle_cost(self) -> int:
        """By its page size, as a list (read_cost)."""
        return read_cost(self.request.query_params.get("limit"))

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
        # The lists' paging (`page_size`, `cursor`, omnisdk's `page`) is taken and ignored.
        taken = {*EventFilterSerializer().fields, *paging_parameters()}
        refuse_unknown_parameters(request, taken)
        filters = EventFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        options = filters.validated_data
        events, payloads = event_feed_page(
            user=request.user, after=options.get("after"), type=options.get("type"),
            limit=options["limit"],
        )  # fmt: skip
        next_url = None
        if events:
            query = request.query_params.copy()
            query["after"] = events[-1].id
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        results = [feed_item(event, payloads[event.id]) for event in events]
        return Response({"next": next_url, "results": results})
