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
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from omnitron.api.error_codes import ApiErrorCode
from omnitron.api.lookups import TokenStatement, UserLookup
from omnitron.api.throttling import (
    RATE_COLUMNS,
    UserScopedRateThrottle,
    is_counted,
    rate_count,
    rate_hit_ctes,
    rate_params,
    throttle_cost,
)
from omnitron.db.sql import compact


@cache
def _token_user_statement(
    counts_rate: bool, lookups: tuple[UserLookup, ...]
) -> tuple[str, list[str]]:
    """The statement and the user fields it loads, built once per variant: the user and
    the permission, then the rate count (when counted here), then each lookup."""
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
    if not counts_rate and not lookups:
        return compact(token_user), attnames
    ctes = [f"token_user AS ({token_user})"]
    extra = [f"({lookup.sql})" for lookup in lookups]
    if counts_rate:
        key = "(SELECT %(rate_key_prefix)s::text || id FROM token_user)"
        ctes.append(rate_hit_ctes(key))
        extra[:0] = [f"(SELECT {column} FROM rate_hit)" for column in RATE_COLUMNS]
    sql = f"WITH {', '.join(ctes)} SELECT token_user.*, {', '.join(extra)} FROM token_user"
    return compact(sql), attnames


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`. `request.auth` is a TokenStatement: whether the user
    has the view's permission (for omnitron.api.permissions.HasRequiredPermission), the
    request's count toward the view's rate limit when it counted it here (for
    UserScopedRateThrottle), and the values of the view's `authentication_lookups`."""

    def authenticate(self, request):
        self.request = request
        self.view = (getattr(request, "parser_context", None) or {}).get("view")
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        required = getattr(self.view, "required_permission", None) or "."
        app_label, _, codename = required.partition(".")
        params = {"key": key, "app_label": app_label, "codename": codename}
        rate = self._rate_counted_here()
        if rate is not None:
            scope, (requests, duration) = rate
            prefix = UserScopedRateThrottle.user_key_prefix(scope)
            params.update(rate_params(duration, requests, cost=throttle_cost(self.view)),
                          rate_key_prefix=prefix)  # fmt: skip
        lookups = {}
        for lookup in getattr(self.view, "authentication_lookups", ()):
            if (lookup_params := lookup.params(self.request)) is not None:
                if clash := params.keys() & lookup_params.keys():  # one statement's names
                    raise ImproperlyConfigured(f"{lookup.name}: parameters taken: {clash}")
                lookups[lookup] = lookup_params
                params.update(lookup_params)
        statement, attnames = _token_user_statement(rate is not None, tuple(lookups))
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(ApiErrorCode.AUTHENTICATION_FAILED.message)
        user = get_user_model().from_db(connection.alias, attnames, row[: len(attnames)])
        if not user.is_active:  # as an unknown token: the registry's one message
            raise exceptions.AuthenticationFailed(ApiErrorCode.AUTHENTICATION_FAILED.message)
        has_required_permission, *extra = row[len(attnames) :]
        counted = None
        if rate is not None:
            columns = [extra.pop(0) for _ in RATE_COLUMNS]
            counted = (f"{prefix}{user.pk}", rate_count(columns, params))
        return user, TokenStatement(
            key=key,
            has_required_permission=has_required_permission,
            rate_count=counted,
            lookups={
                lookup.name: lookup.load(value, lookup_params)
                for (lookup, lookup_params), value in zip(lookups.items(), extra, strict=True)
            },
        )

    def _rate_counted_here(self) -> tuple[str, tuple[int, int]] | None:
        """(scope, (requests, window seconds)) when the view limits each user's rate
        with UserScopedRateThrottle and that rate is on; else None."""
        scope = getattr(self.view, "throttle_scope", None)
        if not scope or UserScopedRateThrottle not in getattr(self.view, "throttle_classes", ()):
            return None
        if not is_counted(self.request.method, self.view):
            return None
        limit = UserScopedRateThrottle.limit(scope)
        return None if limit is None else (scope, limit)
