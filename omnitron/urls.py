from django.contrib import admin
from django.urls import include, path

api_v1 = [
    path("", include("omnitron.api.urls")),
    path("", include("capture.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]

handler400 = "omnitron.api.views.bad_request"
handler403 = "omnitron.api.views.permission_denied"
handler404 = "omnitron.api.views.not_found"
handler500 = "omnitron.api.views.server_error"
