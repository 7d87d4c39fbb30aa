"""What an API view answers to OPTIONS."""

from rest_framework.metadata import SimpleMetadata


class Metadata(SimpleMetadata):
    """DRF's OPTIONS answer (name, media types, and a write's fields) without the
    view's description: that is its docstring, written for the next engineer (it named
    modules and the read replica), not for clients; the docs page describes the API."""

    def determine_metadata(self, request, view):
        metadata = super().determine_metadata(request, view)
        metadata.pop("description", None)
        return metadata
