"""A URLconf with a view that fails, to test the answer to unexpected errors."""

from django.urls import include, path
from rest_framework.views import APIView


class Boom(APIView):
    def post(self, request):
        key = request.auth  # a local variable holding the token, as authentication's do
        raise RuntimeError(f"something nobody expected ({len(key)})")


urlpatterns = [
    path("api/v1/boom/", Boom.as_view()),
    path("", include("omnitron.urls")),
]
