from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings

from omnitron.db.router import ReplicaReadsMixin

from .error_codes import FieldErrorCode
from .exceptions import named_errors
from .pagination import Pagination
from .schema import DETAIL_ERRORS, READ_ERRORS
from .throttling import READ_SCOPE, AnswerSizeMixin, UserScopedRateThrottle, read_cost


class ScopedReadOnlyViewSet(AnswerSizeMixin, ReplicaReadsMixin, viewsets.ReadOnlyModelViewSet):
    """List and retrieve what a selector lets the user see. The list's query
    parameters are validated by `filter_serializer_class` and handed to the selector;
    rows the selector hides are 404 on retrieve, never 403. GET requests read from the
    read replica when there is one (omnitron/db/router.py)."""

    pagination_class = Pagination
    filter_serializer_class = None
    throttle_classes = [UserScopedRateThrottle]
    lookup_value_regex = "[0-9]+"  # pks are integers; anything else is an unknown URL

    @property
    def throttle_scope(self) -> str | None:
        """Reads count toward the `read` limit (the ERP's PATCH of an order toward its
        own: orders/views.py)."""
        return READ_SCOPE if self.request.method in ("GET", "HEAD") else None

    @property
    def throttle_cost(self) -> int:
        """A list counts by its page size (read_cost), a detail as one read."""
        if self.action != "list":
            return 1
        pages = self.pagination_class
        return read_cost(self.request.query_params.get(pages.page_size_query_param), pages)

    def select(self, *, user, filters: dict):
        raise NotImplementedError

    def get_queryset(self):
        filters = {}
        if self.action == "list" and self.filter_serializer_class is not None:
            self._refuse_unknown_parameters()
            params = self.filter_serializer_class(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            filters = params.validated_data
        return self.select(user=self.request.user, filters=filters)

    def _refuse_unknown_parameters(self):
        refuse_unknown_parameters(self.request, self.list_parameters())

    def list_parameters(self) -> set[str]:
        """The query parameters the list takes: its filters and the page's."""
        return {*self.filter_serializer_class().fields, *paging_parameters(self.pagination_class)}


# Taken and ignored: Akinon's omnisdk sends `page=1` with every list (the page-number
# pages these keyset pages replaced); the lists answer their first page to it, as before.
IGNORED_PAGE = "page"


def paging_parameters(pagination=Pagination) -> set[str]:
    """The query parameters of a list's pages: its cursor, its page size and `page`."""
    return {pagination.cursor_query_param, pagination.page_size_query_param, IGNORED_PAGE}


def refuse_unknown_parameters(request, known: set[str]) -> None:
    """A list takes its own query parameters and `format`: anything else is a 400
    naming it (at most five), never ignored. A misspelt filter was: an export "since" a
    date held every capture, and the event feed's `afer=` served it from the start."""
    unknown = sorted(set(request.query_params) - known - {api_settings.URL_FORMAT_OVERRIDE})
    if unknown:
        code = FieldErrorCode.UNKNOWN_PARAMETER
        raise ValidationError(named_errors(unknown[:5], code.message), code=code.code)


def documented(*, tag: str, list_summary: str, list_description: str, retrieve_summary: str,
               retrieve_description: str | None = None):  # fmt: skip
    """The OpenAPI documentation of a ScopedReadOnlyViewSet, as a class decorator: its
    filters, its serializer and the read endpoints' errors."""

    def decorate(viewset):
        serializer = viewset.serializer_class
        retrieve = {"summary": retrieve_summary}
        if retrieve_description:
            retrieve["description"] = retrieve_description
        listing = extend_schema(
            summary=list_summary,
            description=list_description,
            parameters=[viewset.filter_serializer_class],
            responses={200: serializer(many=True), **READ_ERRORS},
        )
        one = extend_schema(**retrieve, responses={200: serializer, **DETAIL_ERRORS})
        return extend_schema(tags=[tag])(extend_schema_view(list=listing, retrieve=one)(viewset))

    return decorate
