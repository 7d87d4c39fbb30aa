"""Writes of accounts: API tokens."""

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token


def api_token_get_or_create(*, user) -> Token:
    """The user's API token, created on first use."""
    token, _ = Token.objects.get_or_create(user=user)
    return token


def api_token_rotate(*, username: str) -> Token:
    """Replace the user's token with a new one; the old key stops working at once."""
    User = get_user_model()
    with transaction.atomic():
        try:
            user = User.objects.select_for_update().get(username=username)
        except User.DoesNotExist:
            raise LookupError(f"No user {username!r}.") from None
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)
