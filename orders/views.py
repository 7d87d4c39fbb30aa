from omnitron.api.viewsets import ScopedReadOnlyViewSet, documented

from .filters import OrderFilterSerializer, OrderItemFilterSerializer
from .models import Order, OrderItem
from .selectors import order_item_list_for_user, order_list_for_user
from .serializers import OrderItemSerializer, OrderSerializer


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
    queryset = Order.objects.none()  # for the schema; rows come from select()
    serializer_class = OrderSerializer
    filter_serializer_class = OrderFilterSerializer

    def select(self, *, user, filters):
        return order_list_for_user(user=user, filters=filters)


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
