"""The docs pages, kept on this machine: Swagger UI and Redoc come from
drf-spectacular-sidecar's static files, and a Content-Security-Policy stops the
browser from fetching anything elsewhere (Redoc's bundle links Redocly's logo on a
CDN)."""

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

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
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CSP
        return response


class SwaggerView(OfflineDocsMixin, SpectacularSwaggerView):
    pass


class RedocView(OfflineDocsMixin, SpectacularRedocView):
    pass
