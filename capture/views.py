from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from omnitron.api.error_codes import ApiErrorCode
from omnitron.api.error_codes import FieldErrorCode as F
from omnitron.api.permissions import HasRequiredPermission
from omnitron.api.renderers import JSONErrorsMixin, JSONRenderer
from omnitron.api.schema import (
    AUTHENTICATION,
    BODY_CODES,
    NUMBER_CODES,
    READ_ERROR_CODES,
    STRING_CODES,
    UNAVAILABLE,
)
from omnitron.api.schema import error_responses as errors
from omnitron.api.throttling import EXPORT_SCOPE, UserScopedRateThrottle
from omnitron.api.viewsets import ScopedReadOnlyViewSet, documented
from omnitron.observability import note
from orders.serializers import OrderSerializer

from .answers import Answer
from .error_codes import CaptureErrorCode, ExportErrorCode
from .export import CSVRenderer, captures_csv_response
from .filters import CaptureFilterSerializer
from .idempotency import IDEMPOTENCY_KEY, StoredAnswerLookup, idempotency_key, replay_as_sent
from .lookups import OrderReadLookup
from .models import Capture
from .rules import (
    IDEMPOTENCY_KEY_TTL_HOURS,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_PAGE_ATTRIBUTE_CHARACTERS,
    MAX_PAGE_ITEMS,
)
from .selectors import (
    CAPTURED_ITEM_COLUMNS,
    capture_attribute_characters,
    capture_item_count,
    capture_list_for_user,
)
from .serializers import CaptureOrderSerializer, CaptureSerializer
from .services import capture_answer

JSON = JSONRenderer.media_type
CAPTURE_FIELD_CODES = (
    F.REQUIRED, F.NULL, F.INVALID, F.NOT_A_LIST, F.EMPTY, F.NOT_A_DICT,
    *NUMBER_CODES, *STRING_CODES,
)  # fmt: skip


class CaptureOrderView(APIView):
    """POST /api/v1/capture-order/: authenticate, validate, capture, answer the Order.

    A capture's path, in the order it runs:
    1. Authentication (accounts/authentication.py) is one statement: the token's user,
       whether it has `required_permission`, the request's count toward the `capture`
       rate limit, and this view's `authentication_lookups`: the Idempotency-Key's
       stored answer (capture/idempotency.py) and the order and given items, read
       without a lock (capture/lookups.py). The permission and the throttle only read
       what it found (`request.auth`, a TokenStatement).
    2. A retry whose body is, as sent, the stored request's is answered here.
    3. Otherwise the body is validated and `capture_answer` (capture/services.py) judges
       the rules on what step 1 read and writes in one statement (capture/sql.py) that
       writes only if the rows are still as read; if not, it reads again under locks.
       With an Idempotency-Key, that runs in a transaction that stores the answer.
    4. The answer is the Order the write read back, or a coded error
       (capture/exceptions.py, capture/error_codes.py).
    """

    required_permission = "orders.capture_order"
    permission_classes = [IsAuthenticated, HasRequiredPermission]
    throttle_classes = [UserScopedRateThrottle]
    throttle_scope = "capture"
    # The authentication statement reads a replay's stored answer, and the order and
    # items to capture.
    authentication_lookups = [StoredAnswerLookup(), OrderReadLookup()]

    @extend_schema(
        summary="Capture Order",
        description="Capture an order by providing the order number and the items to be captured.",
        tags=["CaptureOrder"],
        request=CaptureOrderSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description=(
                    f"Optional, one header of 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII "
                    "characters other than a comma. A retry with the same key and body "
                    f"within {IDEMPOTENCY_KEY_TTL_HOURS} hours replays the first answer (header "
                    "`Idempotent-Replayed: true`) and changes nothing."
                ),
                pattern=f"^{IDEMPOTENCY_KEY.pattern}$",
            )
        ],
        responses={
            200: OpenApiResponse(OrderSerializer, description="Order captured successfully"),
            **errors(
                *CaptureErrorCode,
                *CAPTURE_FIELD_CODES,
                *AUTHENTICATION,
                ApiErrorCode.PERMISSION_DENIED,
                *BODY_CODES,
                ApiErrorCode.DELETED_MEANWHILE,
                *UNAVAILABLE,
            ),  # fmt: skip
        },
    )
    def post(self, request):
        key = idempotency_key(request)
        lookups = getattr(request.auth, "lookups", {})
        stored = lookups.get(StoredAnswerLookup.name)
        if key is not None and stored is not None:
            replayed = replay_as_sent(stored, request.data)
            if replayed is not None:
                note(request, order=request.data["order"])
                return answer_response(replayed)
        serializer = CaptureOrderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        note(request, order=serializer.validated_data["order"])
        answer = capture_answer(
            user=request.user,
            data=serializer.validated_data,
            idempotency_key=key,
            stored=stored,
            seen=lookups.get(OrderReadLookup.name),
            request_id=getattr(request, "request_id", ""),
        )
        return answer_response(answer)


def answer_response(answer: Answer) -> HttpResponse:
    """A capture's answer; an Idempotency-Key's byte for byte as stored."""
    response = HttpResponse(answer.body, status=answer.status_code, content_type=JSON)
    if answer.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


CAPTURE_LIST_RESPONSES = {
    (200, JSON): OpenApiResponse(
        CaptureSerializer(many=True),
        description=(
            "JSON, paginated; or, for `Accept: text/csv` or `?format=csv`, the "
            "reconciliation export: CSV, one row per captured item, header row first, "
            f"not paginated. Columns: {', '.join(CAPTURED_ITEM_COLUMNS)}."
        ),
    ),
    (200, CSVRenderer.media_type): OpenApiResponse(OpenApiTypes.STR),
    **{  # errors: JSON
        (status, JSON): response
        for status, response in errors(*READ_ERROR_CODES, *ExportErrorCode).items()
    },
}


EXPORT_TAKES_NO_CURSOR = (
    "The CSV export is not paged and takes no cursor: it holds every row; narrow it by date."
)


@extend_schema_view(list=extend_schema(responses=CAPTURE_LIST_RESPONSES))
@documented(
    tag="Captures",
    list_summary="List captures",
    list_description="The capture audit of your channels' orders, newest first, with items.",
    retrieve_summary="Retrieve a capture",
)
class CaptureViewSet(JSONErrorsMixin, ScopedReadOnlyViewSet):
    queryset = Capture.objects.none()  # for the schema; rows come from select()
    serializer_class = CaptureSerializer
    filter_serializer_class = CaptureFilterSerializer
    # A capture holds 1 to 1,000 items: a page holds at most MAX_PAGE_ITEMS of them
    # (500 captures of 1,000 items took 26 s, past gunicorn's timeout), and at most
    # MAX_PAGE_ATTRIBUTE_CHARACTERS of their attributes (16 KB each, before and after).
    page_parts = (capture_item_count(), MAX_PAGE_ITEMS)
    page_weight = (capture_attribute_characters, MAX_PAGE_ATTRIBUTE_CHARACTERS)

    def select(self, *, user, filters):
        return capture_list_for_user(user=user, filters=filters)

    @property
    def throttle_scope(self) -> str:
        """An export counts toward its own, smaller limit (the content negotiation that
        chooses it runs before the token statement counts the request)."""
        return EXPORT_SCOPE if self._exporting() else super().throttle_scope

    @property
    def throttle_cost(self) -> int:
        return 1 if self._exporting() else super().throttle_cost

    def get_renderers(self):
        renderers = super().get_renderers()
        return [*renderers, CSVRenderer()] if self.action == "list" else renderers

    def _refuse_unknown_parameters(self):
        # The export is not paginated: a cursor sent to resume one was ignored, and the
        # file held every row again (an empty one is not sent, as any parameter's).
        cursor = self.pagination_class.cursor_query_param
        if self._exporting() and self.request.query_params.get(cursor):
            unknown = F.UNKNOWN_PARAMETER
            raise ValidationError({cursor: [EXPORT_TAKES_NO_CURSOR]}, code=unknown.code)
        super()._refuse_unknown_parameters()

    def list(self, request, *args, **kwargs):
        if self._exporting():
            captures = self.get_queryset()
            # Checked as the JSON list checks it; the export is whole whatever it says.
            self.paginator.get_page_size(request)
            return captures_csv_response(captures)
        return super().list(request, *args, **kwargs)

    def _exporting(self) -> bool:
        renderer = getattr(getattr(self, "request", None), "accepted_renderer", None)
        return isinstance(renderer, CSVRenderer)
