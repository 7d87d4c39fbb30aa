from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from orders.serializers import OrderSerializer

from .idempotency import idempotency_key_parse
from .permissions import CanCaptureOrders
from .serializers import CaptureOrderSerializer
from .services import ItemInput, order_capture


class CaptureOrderView(APIView):
    """POST /api/v1/capture-order/: authenticate, validate, capture, answer the Order."""

    permission_classes = [IsAuthenticated, CanCaptureOrders]

    @extend_schema(
        summary="Capture Order",
        description="Capture an order by providing the order number and the items to be captured.",
        tags=["CaptureOrder"],
        request=CaptureOrderSerializer,
        responses={200: OrderSerializer},
    )
    def post(self, request):
        idempotency_key = idempotency_key_parse(request.headers.get("Idempotency-Key"))
        serializer = CaptureOrderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
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
