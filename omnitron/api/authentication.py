"""Token authentication that loads the user, their capture permission and nothing
else in one query (DRF's loads the token and user, then has_perm costs two more)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

CAPTURE_PERMISSION = ("orders", "capture_order")


def _has_capture_permission():
    app_label, codename = CAPTURE_PERMISSION
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    User = get_user_model()
    direct = User.user_permissions.through.objects.filter(
        user_id=OuterRef("user_id"), permission__in=permission
    )
    via_group = User.groups.through.objects.filter(
        user_id=OuterRef("user_id"), group__permissions__in=permission
    )
    return ExpressionWrapper(
        Q(user__is_superuser=True) | Exists(direct) | Exists(via_group),
        output_field=BooleanField(),
    )


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`. Sets `user.can_capture` for CanCaptureOrders."""

    def authenticate_credentials(self, key):
        try:
            token = (
                Token.objects.select_related("user")
                .annotate(can_capture=_has_capture_permission())
                .get(key=key)
            )
        except Token.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        token.user.can_capture = token.can_capture
        return token.user, token
