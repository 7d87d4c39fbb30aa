from rest_framework import renderers

from omnitron.exactjson import ExactJSONEncoder


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSONRenderer, writing decimals with every digit they have."""

    encoder_class = ExactJSONEncoder


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
