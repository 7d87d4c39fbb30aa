"""A URLconf with a view that fails, to test the answer to unexpected errors."""

from django.urls import include, path
from rest_framework.views import APIView


class Boom(APIView):
    def post(self, request):
        raise RuntimeError("something nobody expected")


urlpatterns = [
    path("api/v1/boom/", Boom.as_view()),
    path("", include("omnitron.urls")),
]
