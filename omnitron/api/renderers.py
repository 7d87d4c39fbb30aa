from rest_framework import exceptions, negotiation, renderers

from omnitron.exactjson import ExactJSONEncoder


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSONRenderer, writing decimals with every digit they have."""

    encoder_class = ExactJSONEncoder

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            # A lone surrogate, echoed from the request (an error naming a key the
            # client sent: 500 before): written as the \u escape the client sent it as.
            self.ensure_ascii = True
            return super().render(data, accepted_media_type, renderer_context)


def render_json(data) -> bytes:
    """The bytes the API answers for `data`."""
    return JSONRenderer().render(data)


# For a view that answers something other than JSON (a docs page's HTML, the schema's
# YAML, the captures' CSV): its errors are JSON all the same, in the API's one error
# shape, whatever the client asked for. (A comment, not a docstring: drf-spectacular
# would take a docstring for the description of every operation of the view.)
class JSONErrorsMixin:
    def finalize_response(self, request, response, *args, **kwargs):
        if getattr(response, "exception", False):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class ContentNegotiation(negotiation.DefaultContentNegotiation):
    """DRF's, but a `?format=` no renderer of the view answers is 406 not_acceptable,
    as an `Accept` header none answers is (DRF answers it 404, as if the path did not
    exist); a `?format=` a renderer answers wins over `Accept` (SDKs send `Accept:
    application/json` on every request, and `?format=csv` was 406 for them); an
    empty `Accept` is no preference, as none at all (it was 406); and a wildcard
    Content-Type is no JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        format = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if format:
            renderer = self.filter_renderers(renderers, format)[0]
            return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)

    def get_accept_list(self, request):
        return super().get_accept_list(request) or ["*/*"]

    def select_parser(self, request, parsers):
        # A Content-Type with a wildcard (`*/*`, `application/*`) names no format, and
        # is 415 as any other but JSON: DRF's match goes both ways, so it read them as
        # JSON.
        if "*" in request.content_type.split(";", 1)[0]:
            return None
        return super().select_parser(request, parsers)

    def filter_renderers(self, renderers, format):
        renderers = [renderer for renderer in renderers if renderer.format == format]
        if not renderers:
            raise exceptions.NotAcceptable()
        return renderers
