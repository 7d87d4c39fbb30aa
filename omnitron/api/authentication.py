"""Token authentication in one SQL statement: the token's user and whether it may
capture (directly, through a group, or as a superuser).

DRF's TokenAuthentication costs a token+user query and `has_perm` two more; the
same question asked through the ORM (Exists() subqueries) cost about 15 ms of
Python per request on the benchmark machine. This is plain SQL, built once and
prepared once per connection."""

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from omnitron.prepared import PreparedStatement

from .throttling import rate_hit_sql, rate_limit, rate_window

CAPTURE_PERMISSION = ("orders", "capture_order")


@cache
def _token_user_query(rate_scope: str | None) -> tuple[PreparedStatement, list[str]]:
    """The statement and the user fields it loads (built once per variant). With a
    rate scope it also counts the request in that rate limit's current window, in the
    same round trip (see omnitron/api/throttling.py)."""
    User = get_user_model()
    fields = list(User._meta.concrete_fields)
    columns = ", ".join(f'u."{field.column}"' for field in fields)
    user_permissions = User.user_permissions.through._meta.db_table
    user_groups = User.groups.through._meta.db_table
    group_permissions = Group.permissions.through._meta.db_table
    permission = f"""(SELECT ap.id FROM {Permission._meta.db_table} ap
                        JOIN {ContentType._meta.db_table} ct ON ct.id = ap.content_type_id
                       WHERE ct.app_label = %(app_label)s AND ap.codename = %(codename)s)"""
    token_user = f"""
        SELECT {columns},
               u.is_superuser
               OR EXISTS (SELECT 1 FROM {user_permissions} up
                           WHERE up.user_id = u.id AND up.permission_id = {permission})
               OR EXISTS (SELECT 1 FROM {user_groups} ug
                            JOIN {group_permissions} gp ON gp.group_id = ug.group_id
                           WHERE ug.user_id = u.id AND gp.permission_id = {permission})
               AS can_capture
          FROM {Token._meta.db_table} t
          JOIN {User._meta.db_table} u ON u.id = t.user_id
         WHERE t.key = %(key)s
    """
    if rate_scope is None:
        return PreparedStatement("omnitron_token_user", token_user), [f.attname for f in fields]
    sql = f"""
        WITH token_user AS ({token_user}),
        hit AS ({rate_hit_sql("(SELECT %(scope)s || ':' || id FROM token_user)")})
        SELECT token_user.*, (SELECT hits FROM hit) FROM token_user
    """
    name = f"omnitron_token_user_{rate_scope}"
    return PreparedStatement(name, sql), [f.attname for f in fields]


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`. Sets `user.can_capture` for CanCaptureOrders.

    On a view with an `authentication_rate_scope`, it also counts the request for
    that per-user rate limit in the same statement and leaves the count in
    `user.rate_hits` for the throttle: one round trip less per request."""

    rate_scope: str | None = None

    def authenticate(self, request):
        view = (getattr(request, "parser_context", None) or {}).get("view")
        self.rate_scope = getattr(view, "authentication_rate_scope", None)
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        limit = rate_limit(self.rate_scope) if self.rate_scope else None
        statement, attnames = _token_user_query(self.rate_scope if limit else None)
        app_label, codename = CAPTURE_PERMISSION
        params = {"key": key, "app_label": app_label, "codename": codename}
        if limit:
            window, seconds_left = rate_window(limit[1])
            params.update(scope=self.rate_scope, window=window)
        with connection.cursor() as cursor:
            statement.execute(cursor, params)
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if limit:
            *row, hits = row
        user = get_user_model().from_db(connection.alias, attnames, row[:-1])
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        user.can_capture = row[-1]
        if limit:
            user.rate_hits = {self.rate_scope: (hits, seconds_left)}
        return user, key
