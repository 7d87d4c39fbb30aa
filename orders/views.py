from drf_spectacular.utils import extend_schema, extend_schema_view

from omnitron.api.schema import READ_ERRORS
from omnitron.api.viewsets import ScopedReadOnlyViewSet

from .filters import OrderFilterSerializer, OrderItemFilterSerializer
from .models import Order, OrderItem
from .selectors import order_item_list_for_user, order_list_for_user
from .serializers import OrderItemSerializer, OrderSerializer


@extend_schema_view(
    list=extend_schema(
        summary="List orders",
        description="Orders of your channels, newest first.",
        parameters=[OrderFilterSerializer],
        responses={200: OrderSerializer(many=True), **READ_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Retrieve an order",
        description="The same `Order` as the capture answer. Orders of other channels are 404.",
        responses={200: OrderSerializer, **READ_ERRORS},
    ),
)
@extend_schema(tags=["Orders"])
class OrderViewSet(ScopedReadOnlyViewSet):
    queryset = Order.objects.none()  # for the schema; rows come from select()
    serializer_class = OrderSerializer
    filter_serializer_class = OrderFilterSerializer

    def select(self, *, user, filters):
        return order_list_for_user(user=user, filters=filters)


@extend_schema_view(
    list=extend_schema(
        summary="List order items",
        description="Items of your channels' orders, by pk; `is_captured` filters by state.",
        parameters=[OrderItemFilterSerializer],
        responses={200: OrderItemSerializer(many=True), **READ_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Retrieve an order item",
        responses={200: OrderItemSerializer, **READ_ERRORS},
    ),
)
@extend_schema(tags=["Orders"])
class OrderItemViewSet(ScopedReadOnlyViewSet):
    queryset = OrderItem.objects.none()
    serializer_class = OrderItemSerializer
    filter_serializer_class = OrderItemFilterSerializer

    def select(self, *, user, filters):
        return order_item_list_for_user(user=user, filters=filters)
