"""Reads a view needs per authenticated user, folded into the authentication statement
(accounts/authentication.py): one round trip fewer per request. The rate limit count
works the same way (omnitron/api/throttling.py)."""


class UserLookup:
    """A scalar subquery that may use `token_user.id` and `token_user.is_superuser`
    (the authenticated user), with its `%(...)s` parameters (`%(...)b` for binary ones,
    as capture/sql.py sends arrays). A view lists its lookups
    in `authentication_lookups`; their values, as `load` gives them, arrive in
    `request.user.lookups[name]`."""

    name: str = ""
    sql: str = ""

    def params(self, request) -> dict | None:
        """The subquery's parameters for this request; None when it needs no lookup."""
        raise NotImplementedError

    def load(self, value, params: dict):
        """The subquery's value as the view takes it (`params`: this request's)."""
        return value
