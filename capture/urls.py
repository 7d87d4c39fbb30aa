from django.urls import path

from .views import CaptureOrderView

urlpatterns = [
    path("capture-order/", CaptureOrderView.as_view(), name="capture-order"),
]
