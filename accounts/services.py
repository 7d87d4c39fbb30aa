"""Accounts' rules and writes: what a username sent means, login (in one of the
login slots that keep password checks from taking every worker), API tokens."""

from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.db import connection, transaction
from rest_framework.authtoken.models import Token

from .exceptions import InvalidCredentials, LoginsBusy


def username_as_stored(username: str) -> str:
    """The username a name sent by a client or an operator means: as sent when a user
    has exactly that name (one stored before names were normalized), else as Django's
    forms read it (NFKC: "ｗｍｓ" is "wms"), which is how new names are stored."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        return username
    return User.normalize_username(username)


def user_login(*, request, username: str, password: str):
    """The active user these credentials are, checked in a login slot. Raises
    InvalidCredentials (an unknown name, a wrong password and an inactive user alike)
    and LoginsBusy."""
    with login_slot():
        user = authenticate(request=request, username=username_as_stored(username),
                            password=password)  # fmt: skip
    if user is None:
        raise InvalidCredentials()
    return user


def api_token_get_or_create(*, user) -> Token:
    """The user's API token, created on first use."""
    token, _ = Token.objects.get_or_create(user=user)
    return token


def api_token_replace_if_any(*, user) -> None:
    """After the user's password changed: the token its old password could obtain (the
    API's login answers it) stops working. A user without a token gets none."""
    with transaction.atomic():
        if Token.objects.filter(user=user).delete()[0]:
            Token.objects.create(user=user)


def api_token_rotate(*, username: str) -> Token:
    """Replace the user's token with a new one; the old key stops working at once. The
    name is read as the login and create_api_user read it ("ｗｍｓ" is "wms": it
    named no user)."""
    User = get_user_model()
    with transaction.atomic():
        try:
            user = User.objects.select_for_update().get(username=username_as_stored(username))
        except User.DoesNotExist:
            raise LookupError(f"No user {username!r}.") from None
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


# The advisory lock space of login slots: (LOGIN_SLOTS, slot) for slot 1 to
# LOGIN_CONCURRENCY. Two-key locks never meet capture/idempotency.py's one-key ones.
LOGIN_SLOTS = 0x4C6F67  # "Log"
TAKE_LOGIN_SLOT = """
    SELECT EXISTS (SELECT FROM generate_series(1, %(slots)s) AS slot
                    WHERE pg_try_advisory_xact_lock(%(space)s, slot))"""


@contextmanager
def login_slot():
    """Hold one of LOGIN_CONCURRENCY login slots, shared by every app process on the
    database, while checking a password; raises LoginsBusy when all are taken. A
    transaction-level lock (it works through PgBouncer's transaction pooling): the
    slot is free again when the block ends, or when the process dies. The block is a
    transaction of its own (`durable`): inside another one the slot would be held
    until that one ended."""
    with transaction.atomic(durable=True):
        with connection.cursor() as cursor:
            cursor.execute(TAKE_LOGIN_SLOT, {"slots": settings.LOGIN_CONCURRENCY,
                                             "space": LOGIN_SLOTS})  # fmt: skip
            (taken,) = cursor.fetchone()
        if not taken:
            raise LoginsBusy()
        yield
