from rest_framework import viewsets

from .pagination import Pagination


class ScopedReadOnlyViewSet(viewsets.ReadOnlyModelViewSet):
    """List and retrieve what a selector lets the user see. The list's query
    parameters are validated by `filter_serializer_class` and handed to the selector;
    rows the selector hides are 404 on retrieve, never 403."""

    pagination_class = Pagination
    filter_serializer_class = None
    lookup_value_regex = "[0-9]+"  # pks are integers; anything else is an unknown URL

    def select(self, *, user, filters: dict):
        raise NotImplementedError

    def get_queryset(self):
        filters = {}
        if self.action == "list" and self.filter_serializer_class is not None:
            params = self.filter_serializer_class(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            filters = params.validated_data
        return self.select(user=self.request.user, filters=filters)
