from rest_framework import renderers

from omnitron.exactjson import ExactJSONEncoder


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSONRenderer, writing decimals with every digit they have."""

    encoder_class = ExactJSONEncoder


def render_json(data) -> bytes:
    """The bytes the API answers for `data`."""
    return JSONRenderer().render(data)
