from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import CaptureOrderView, CaptureViewSet

router = SimpleRouter()
router.register("captures", CaptureViewSet, basename="capture")

urlpatterns = [
    path("capture-order/", CaptureOrderView.as_view(), name="capture-order"),
    *router.urls,
]
