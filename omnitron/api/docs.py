"""The docs pages, kept on this machine: Swagger UI and Redoc come from
drf-spectacular-sidecar's static files, and a Content-Security-Policy stops the
browser from fetching anything elsewhere (Redoc's bundle links Redocly's logo on a
CDN)."""

from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from .renderers import JSONRenderer

DOCS_CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline'",  # the pages' inline start-up scripts
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "worker-src 'self' blob:",  # Redoc's search worker
    "connect-src 'self'",
    "frame-ancestors 'none'",
])  # fmt: skip


class OfflineDocsMixin:
    http_method_names = ["get", "head"]  # DRF's OPTIONS answer needs a template they lack

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CSP
        return response


class SwaggerView(OfflineDocsMixin, SpectacularSwaggerView):
    pass


class RedocView(OfflineDocsMixin, SpectacularRedocView):
    pass


class SchemaView(SpectacularAPIView):
    """The schema as YAML or JSON; its errors as every other error of the API: JSON,
    `detail` a string (DRF would render them in the schema's format)."""

    def _get_version_parameter(self, request):
        # The API has one version. drf-spectacular would take a client's ?version=
        # into the schema and its Content-Disposition header (a newline there was a
        # 500, and `"; filename=...` a second filename).
        return None

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400:
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response
