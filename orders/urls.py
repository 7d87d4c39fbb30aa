from rest_framework.routers import SimpleRouter

from .views import OrderItemViewSet, OrderViewSet

router = SimpleRouter()
router.register("orders", OrderViewSet, basename="order")
router.register("order_items", OrderItemViewSet, basename="order-item")

urlpatterns = router.urls
