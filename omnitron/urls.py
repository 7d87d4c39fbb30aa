from django.contrib import admin
from django.urls import include, path

from omnitron.api.docs import RedocView, SchemaView, SwaggerView
from omnitron.metrics import metrics_view

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("capture.urls")),
    path("", include("orders.urls")),
    path("", include("events.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", RedocView.as_view(url_name="schema"), name="redoc"),
]

handler400 = "omnitron.api.views.bad_request"
handler403 = "omnitron.api.views.permission_denied"
handler404 = "omnitron.api.views.not_found"
handler500 = "omnitron.api.views.server_error"
