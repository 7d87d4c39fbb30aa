"""Reads a view needs per authenticated user, folded into the authentication statement
(accounts/authentication.py): one round trip fewer per request. The rate limit count
works the same way (omnitron/api/throttling.py). What the statement read besides the
user reaches the view, the permission and the throttle as `request.auth`, a
TokenStatement."""

from dataclasses import dataclass, field

from .throttling import RateCount


@dataclass(frozen=True)
class TokenStatement:
    """`request.auth` after accounts' TokenAuthentication: the token, and what its one
    statement read besides the user. Code that reads it takes its absence (another
    authentication class) as "not read here" and asks the usual way."""

    key: str
    # Whether the user has the view's `required_permission` (HasRequiredPermission).
    has_required_permission: bool
    # (throttle key, count) when the request was counted for the view's per-user rate
    # limit (UserScopedRateThrottle); None when it was not counted here.
    rate_count: tuple[str, RateCount] | None = None
    # The values of the view's `authentication_lookups`, by lookup name.
    lookups: dict = field(default_factory=dict)


class UserLookup:
    """A scalar subquery that may use the authenticated user's row, `token_user` (its
    columns, and `has_required_permission`: accounts/authentication.py), with its
    `%(...)s` parameters (`%(...)b` for binary ones, as capture/sql.py sends arrays),
    named with a prefix of their own (`capture_`, `idempotency_`): they share the
    statement's names with the token's (`key`, `app_label`, `codename`, `rate_...`) and
    the other lookups', and a name taken twice is refused. A view lists its lookups
    in `authentication_lookups`; their values, as `load` gives them, arrive in
    `request.auth.lookups[name]`."""

    name: str = ""
    sql: str = ""

    def params(self, request) -> dict | None:
        """The subquery's parameters for this request; None when it needs no lookup."""
        raise NotImplementedError

    def load(self, value, params: dict):
        """The subquery's value as the view takes it (`params`: this request's)."""
        return value
