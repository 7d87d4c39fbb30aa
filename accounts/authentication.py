"""Token authentication in one SQL statement: the token's user, whether that user
has the view's `required_permission` (directly, through a group, or as a
superuser), and, on a view with a per-user `throttle_scope`, the request counted
in that rate limit.

DRF's TokenAuthentication, `has_perm` and the throttle ask the same in four
statements; docs/performance.md has what folding them into one saves. The SQL is
built once; psycopg prepares it on each connection (DB_PREPARED_STATEMENTS)."""

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from omnitron.api.throttling import UserScopedRateThrottle, rate_hit_sql, rate_window


@cache
def _token_user_statement(counts_rate: bool) -> tuple[str, list[str]]:
    """The statement and the user fields it loads, built once per variant."""
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
               AS has_required_permission
          FROM {Token._meta.db_table} t
          JOIN {User._meta.db_table} u ON u.id = t.user_id
         WHERE t.key = %(key)s
    """
    attnames = [field.attname for field in fields]
    if not counts_rate:
        return token_user, attnames
    sql = f"""
        WITH token_user AS ({token_user}),
        hit AS ({rate_hit_sql("(SELECT %(rate_key_prefix)s::text || id FROM token_user)")})
        SELECT token_user.*, (SELECT hits FROM hit) FROM token_user
    """
    return sql, attnames


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`. Leaves on the user `has_required_permission`
    (for omnitron.api.permissions.HasRequiredPermission) and, when it counted the
    request for the view's rate limit, `rate_hits` (for UserScopedRateThrottle)."""

    def authenticate(self, request):
        self.view = (getattr(request, "parser_context", None) or {}).get("view")
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        required = getattr(self.view, "required_permission", None) or "."
        app_label, _, codename = required.partition(".")
        params = {"key": key, "app_label": app_label, "codename": codename}
        rate = self._rate_counted_here()
        if rate is not None:
            scope, duration = rate
            window, seconds_left = rate_window(duration)
            prefix = UserScopedRateThrottle.user_key_prefix(scope)
            params.update(rate_key_prefix=prefix, window=window)
        statement, attnames = _token_user_statement(counts_rate=rate is not None)
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = get_user_model().from_db(connection.alias, attnames, row[: len(attnames)])
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        user.has_required_permission = row[len(attnames)]
        if rate is not None:
            user.rate_hits = (f"{prefix}{user.pk}", row[-1], seconds_left)
        return user, key

    def _rate_counted_here(self) -> tuple[str, int] | None:
        """(scope, window seconds) when the view limits each user's rate with
        UserScopedRateThrottle and that rate is on; else None."""
        scope = getattr(self.view, "throttle_scope", None)
        if not scope or UserScopedRateThrottle not in getattr(self.view, "throttle_classes", ()):
            return None
        duration = UserScopedRateThrottle.window_seconds(scope)
        return None if duration is None else (scope, duration)
