from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from omnitron.api.error_codes import ApiErrorCode, FieldErrorCode
from omnitron.api.permissions import HasRequiredPermission
from omnitron.api.schema import AUTHENTICATION, BODY_CODES, UNAVAILABLE, error_responses
from omnitron.api.throttling import MARK_SCOPE
from omnitron.api.viewsets import ScopedReadOnlyViewSet, documented

from .error_codes import OrderErrorCode
from .filters import OrderFilterSerializer, OrderItemFilterSerializer
from .models import Order, OrderItem
from .selectors import order_item_list_for_user, order_list_for_user
from .serializers import OrderItemSerializer, OrderSentSerializer, OrderSerializer
from .services import order_mark_sent

ORDER_SENT_FIELD_CODES = (FieldErrorCode.REQUIRED, FieldErrorCode.NULL, FieldErrorCode.INVALID)


@documented(
    tag="Orders",
    list_summary="List orders",
    list_description="Orders of your channels, newest first.",
    retrieve_summary="Retrieve an order",
    retrieve_description=(
        "The same `Order` as the capture answer. Orders of other channels are 404."
    ),
)
class OrderViewSet(ScopedReadOnlyViewSet):
    """The read-only order lists, plus one write: PATCH `is_send` (the ERP's mark-sent),
    which alone needs a permission."""

    queryset = Order.objects.none()  # for the schema; rows come from select()
    serializer_class = OrderSerializer
    filter_serializer_class = OrderFilterSerializer

    def select(self, *, user, filters):
        return order_list_for_user(user=user, filters=filters)

    @property
    def throttle_scope(self) -> str | None:
        """The ERP's PATCH counts toward `mark`, apart from the reads (a page of 50
        orders is followed by 50 PATCHes at once), and toward a limit all the same: an
        ERP stuck in a loop of PATCHes took four of five workers (an outside test)."""
        return MARK_SCOPE if self.action == "partial_update" else super().throttle_scope

    @property
    def required_permission(self) -> str | None:
        return "orders.mark_order_sent" if self.action == "partial_update" else None

    def get_permissions(self):
        if self.action == "partial_update":
            return [IsAuthenticated(), HasRequiredPermission()]
        return super().get_permissions()

    @extend_schema(
        summary="Mark an order sent to the ERP",
        description=(
            "Omnitron's ERP flow: pull `GET /api/v1/orders/?is_send=false`, take the orders, "
            'then mark each `{"is_send": true}`. Only `is_send` can be changed. Needs the '
            "`orders.mark_order_sent` permission. Orders of other channels are 404."
        ),
        request=OrderSentSerializer,
        responses={
            200: OrderSerializer,
            **error_responses(
                OrderErrorCode.NOT_WRITABLE,
                *ORDER_SENT_FIELD_CODES,
                *AUTHENTICATION,
                ApiErrorCode.PERMISSION_DENIED,
                ApiErrorCode.NOT_FOUND,
                *BODY_CODES,
                *UNAVAILABLE,
            ),  # fmt: skip
        },
    )
    def partial_update(self, request, pk=None):
        order = self.get_object()
        serializer = OrderSentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = order_mark_sent(order=order, is_send=serializer.validated_data["is_send"])
        return Response(OrderSerializer(order).data)


@documented(
    tag="Orders",
    list_summary="List order items",
    list_description="Items of your channels' orders, by pk; `is_captured` filters by state.",
    retrieve_summary="Retrieve an order item",
)
class OrderItemViewSet(ScopedReadOnlyViewSet):
    queryset = OrderItem.objects.none()
    serializer_class = OrderItemSerializer
    filter_serializer_class = OrderItemFilterSerializer

    def select(self, *, user, filters):
        return order_item_list_for_user(user=user, filters=filters)
