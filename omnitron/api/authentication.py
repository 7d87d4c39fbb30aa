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

CAPTURE_PERMISSION = ("orders", "capture_order")


@cache
def _token_user_query() -> tuple[PreparedStatement, list[str]]:
    """The statement and the user fields it loads (built once, when first needed)."""
    User = get_user_model()
    fields = list(User._meta.concrete_fields)
    columns = ", ".join(f'u."{field.column}"' for field in fields)
    user_permissions = User.user_permissions.through._meta.db_table
    user_groups = User.groups.through._meta.db_table
    group_permissions = Group.permissions.through._meta.db_table
    permission = f"""(SELECT ap.id FROM {Permission._meta.db_table} ap
                        JOIN {ContentType._meta.db_table} ct ON ct.id = ap.content_type_id
                       WHERE ct.app_label = %(app_label)s AND ap.codename = %(codename)s)"""
    sql = f"""
        SELECT {columns},
               u.is_superuser
               OR EXISTS (SELECT 1 FROM {user_permissions} up
                           WHERE up.user_id = u.id AND up.permission_id = {permission})
               OR EXISTS (SELECT 1 FROM {user_groups} ug
                            JOIN {group_permissions} gp ON gp.group_id = ug.group_id
                           WHERE ug.user_id = u.id AND gp.permission_id = {permission})
          FROM {Token._meta.db_table} t
          JOIN {User._meta.db_table} u ON u.id = t.user_id
         WHERE t.key = %(key)s
    """
    return PreparedStatement("omnitron_token_user", sql), [field.attname for field in fields]


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`. Sets `user.can_capture` for CanCaptureOrders."""

    def authenticate_credentials(self, key):
        statement, attnames = _token_user_query()
        app_label, codename = CAPTURE_PERMISSION
        with connection.cursor() as cursor:
            statement.execute(cursor, {"key": key, "app_label": app_label, "codename": codename})
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = get_user_model().from_db(connection.alias, attnames, row[:-1])
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        user.can_capture = row[-1]
        return user, key
