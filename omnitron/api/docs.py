"""The docs pages, kept on this machine: Swagger UI and Redoc come from
drf-spectacular-sidecar's static files, and a Content-Security-Policy stops the
browser from fetching anything elsewhere (Redoc's bundle links Redocly's logo on a
CDN)."""

from django.conf import settings
from django.http import HttpResponse
from django.utils import translation
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from .error_codes import FieldErrorCode
from .renderers import JSONErrorsMixin

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


def refuse_other_languages(request) -> None:
    """drf-spectacular hands ?lang= to translation.override, and Django keeps what it
    loads for each language name for ever: a new name a request grew every worker
    without end, and built the schema again each time. The schema is written in
    English (LANGUAGES); the docs pages pass their ?lang= on to it."""
    languages = dict(settings.LANGUAGES)
    if (lang := request.GET.get("lang")) and lang not in languages:
        raise serializers.ValidationError(
            {"lang": [f"Not one of: {', '.join(languages)}."]}, code=FieldErrorCode.INVALID.code
        )


class OfflineDocsMixin(JSONErrorsMixin):
    http_method_names = ["get", "head"]  # DRF's OPTIONS answer needs a template they lack
    error_headers = {"Content-Security-Policy": DOCS_CSP}  # on the middleware's 405 too

    @extend_schema(exclude=True)  # as drf-spectacular's own get
    def get(self, request, *args, **kwargs):
        refuse_other_languages(request)  # the page's schema would be a 400
        return super().get(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CSP
        return response


class SwaggerView(OfflineDocsMixin, SpectacularSwaggerView):
    pass


class RedocView(OfflineDocsMixin, SpectacularRedocView):
    pass


class SchemaView(JSONErrorsMixin, SpectacularAPIView):
    """The schema as YAML or JSON, built and rendered once per process, language and
    format: it is the same for every request, building it takes 0.1 to 0.2 s of CPU and
    rendering it 30 ms as YAML (8 as JSON), and anyone may ask (no token). Its errors as
    every other error of the API: JSON, `detail` a string
    (DRF would render them in the schema's format).

    The API has one version: drf-spectacular would take a client's ?version= into the
    schema and its Content-Disposition header (a newline there was a 500, and
    `"; filename=...` a second filename), so none is asked for."""

    http_method_names = ["get", "head"]  # DRF's OPTIONS answer came in YAML
    built: dict[str, dict] = {}
    rendered: dict[tuple, bytes] = {}

    @extend_schema(exclude=True)  # as drf-spectacular's own get (SERVE_INCLUDE_SCHEMA)
    def get(self, request, *args, **kwargs):
        refuse_other_languages(request)
        return super().get(request, *args, **kwargs)

    def _get_schema_response(self, request):
        language = translation.get_language()
        schema = self.built.get(language)
        if schema is None:
            generator = self.generator_class(urlconf=self.urlconf, patterns=self.patterns)
            schema = generator.get_schema(request=request, public=self.serve_public)
            self.built[language] = schema  # ?lang= is one of LANGUAGES
        renderer, media_type = request.accepted_renderer, request.accepted_media_type
        context = self.get_renderer_context()
        # What the body depends on: the language, the renderer and, for JSON, the
        # indent an Accept asks for (DRF's `; indent=`, 0 to 8). Nothing else an Accept
        # says (a browser's q=, a made-up parameter) changes it: such a request was
        # rendered again each time, 67 to 137 ms that anyone could ask for. The keys are
        # few (LANGUAGES, four renderers, at most nine indents), so every one is kept.
        indent = (
            renderer.get_indent(media_type, context) if isinstance(renderer, JSONRenderer) else None
        )
        key = (language, type(renderer), indent)
        body = self.rendered.get(key)
        if body is None:
            body = self.rendered[key] = renderer.render(schema, media_type, context)
        charset = f"; charset={renderer.charset}" if renderer.charset else ""
        # The renderer's own type: the Accept's parameters (a charset) are no promise of it.
        response = HttpResponse(body, content_type=f"{renderer.media_type}{charset}")
        filename = self._get_filename(request, version=None)
        response["Content-Disposition"] = f'inline; filename="{filename}"'
        return response
