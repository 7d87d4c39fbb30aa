from django.urls import path

from .views import EventFeedView

urlpatterns = [path("events/", EventFeedView.as_view(), name="events")]
