from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from omnitron.api.schema import READ_ERRORS, UNAUTHORIZED, WRITE_ERRORS, detail_error, field_errors
from omnitron.api.throttling import CaptureUserThrottle
from omnitron.api.viewsets import ScopedReadOnlyViewSet
from omnitron.observability import note
from orders.serializers import OrderSerializer

from .filters import CaptureFilterSerializer
from .idempotency import idempotency_key_parse
from .models import Capture
from .permissions import CanCaptureOrders
from .rules import MAX_IDEMPOTENCY_KEY_LENGTH
from .selectors import capture_list_for_user
from .serializers import CaptureOrderSerializer, CaptureSerializer
from .services import ItemInput, order_capture

CAPTURE_REFUSED = field_errors(
    "A field or a capture rule refused the request; nothing changed. Rule codes: "
    "`order_not_found`, `order_ambiguous` (on `order`); `order_not_capturable` "
    "(`non_field_errors`); `order_item_not_found`, `order_item_not_capturable`, "
    "`already_captured`, `duplicate_order_items`, `too_many_items` (on `order_items`, "
    "naming the pks); field codes such as `required`, `blank`, `invalid`, `min_value`, "
    "`attributes_too_large`; `parse_error` and `invalid_idempotency_key` (`detail`).",
    examples=[
        OpenApiExample(
            "Already captured",
            value={
                "order_items": ["Order items already captured: 3, 5."],
                "code": "already_captured",
            },
            response_only=True,
        ),
        OpenApiExample(
            "Order not found",
            value={"order": ["Order not found."], "code": "order_not_found"},
            response_only=True,
        ),
    ],
)


class CaptureOrderView(APIView):
    """POST /api/v1/capture-order/: authenticate, validate, capture, answer the Order."""

    # The token statement also counts the request for the per-user rate limit.
    authentication_rate_scope = CaptureUserThrottle.scope
    permission_classes = [IsAuthenticated, CanCaptureOrders]
    throttle_classes = [CaptureUserThrottle]

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
                    f"Optional, 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters. "
                    "A retry with the same key and body within 24 hours replays the first "
                    "answer (header `Idempotent-Replayed: true`) and changes nothing."
                ),
                pattern=rf"^[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}$",
            )
        ],
        responses={
            200: OpenApiResponse(OrderSerializer, description="Order captured successfully"),
            400: CAPTURE_REFUSED,
            401: UNAUTHORIZED,
            403: detail_error("No `orders.capture_order` permission.", ["permission_denied"]),
            409: detail_error(
                "Retry shortly: the order is locked by another capture, or the first request "
                "with this Idempotency-Key is still running.",
                ["order_locked", "idempotency_key_in_use"],
            ),
            422: detail_error(
                "This Idempotency-Key was used with another body.", ["idempotency_key_reused"]
            ),
            **WRITE_ERRORS,
        },
    )
    def post(self, request):
        idempotency_key = idempotency_key_parse(request.headers.get("Idempotency-Key"))
        serializer = CaptureOrderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        note(request, order=data["order"])
        result = order_capture(
            user=request.user,
            order_number=data["order"],
            items=[ItemInput(item["pk"], item.get("attributes")) for item in data["order_items"]],
            channel=data.get("channel"),
            idempotency_key=idempotency_key,
            request_id=getattr(request, "request_id", ""),
        )
        response = HttpResponse(
            result.body, status=result.status_code, content_type="application/json"
        )
        if result.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


@extend_schema_view(
    list=extend_schema(
        summary="List captures",
        description="The capture audit of your channels' orders, newest first, with items.",
        parameters=[CaptureFilterSerializer],
        responses={200: CaptureSerializer(many=True), **READ_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Retrieve a capture", responses={200: CaptureSerializer, **READ_ERRORS}
    ),
)
@extend_schema(tags=["Captures"])
class CaptureViewSet(ScopedReadOnlyViewSet):
    queryset = Capture.objects.none()  # for the schema; rows come from select()
    serializer_class = CaptureSerializer
    filter_serializer_class = CaptureFilterSerializer

    def select(self, *, user, filters):
        return capture_list_for_user(user=user, filters=filters)
