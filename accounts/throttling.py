"""Login attempts, limited per client address and per username (the rates are
DEFAULT_THROTTLE_RATES' `login_address` and `login_username`), counted together for
the API's login and the admin's: the same counters in PostgreSQL, on every node."""

import hashlib

from django.contrib.auth import get_user_model

from omnitron.api.throttling import PostgresRateThrottle


class LoginThrottle(PostgresRateThrottle):
    """A login limit. `username`: the account whose password is checked when the
    request does not name it (the admin's password change); DRF makes its throttles
    without one."""

    def __init__(self, username: str | None = None):
        super().__init__()
        self.username = username

    def identity(self, request) -> str | None:
        """What to count attempts by; None: not counted."""
        raise NotImplementedError

    def get_cache_key(self, request, view):
        ident = self.identity(request)
        if ident is None:
            return None
        # Hashed: addresses and usernames are not stored, and keys stay short.
        digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest[:40]}


class LoginAddressThrottle(LoginThrottle):
    """Per client address (X-Forwarded-For behind NUM_PROXIES proxies)."""

    scope = "login_address"

    def identity(self, request):
        return self.get_ident(request)


class LoginUsernameThrottle(LoginThrottle):
    """Per username, whatever the address: slows password guessing. The username is
    the request's (the login's body or form), or `username` when given."""

    scope = "login_username"

    def identity(self, request):
        # DRF's parsed body, or the admin login form's.
        data = request.data if hasattr(request, "data") else request.POST
        username = self.username
        if username is None:
            username = data.get("username") if hasattr(data, "get") else None
        if type(username) is int:  # a JSON number: the login's field reads 4242 as "4242"
            username = str(username)
        if not isinstance(username, str):
            return None  # refused by the login's field, before any password is checked
        username = username.strip()
        # No user has a longer name, and NFKC makes some characters 18 long: 4 MB of
        # U+FDFA took each login 2 s (24 s for ten at once) before any length check.
        # Django's username field skips NFKC past that length too (CVE-2023-46695).
        User = get_user_model()
        longest = User._meta.get_field("username").max_length
        if len(username) > longest:
            return username[: longest + 1]
        # As Django's login form reads it (trimmed, NFKC): " ops " and "ｏｐｓ" log in to
        # the admin as "ops", and were counted apart, each spelling with its own limit.
        return User.normalize_username(username).strip() or None


# In the order they are asked: the address's first, which reads no body.
LOGIN_THROTTLES = [LoginAddressThrottle, LoginUsernameThrottle]


def login_wait(request, *, username: str | None = None, view=None) -> int | None:
    """Count a password check against the login limits, in order: the API's login
    (`view`), the admin's, or its password change of `username`'s password. The
    seconds to wait when one refuses, and the limits after it neither read nor count
    the attempt (the per-username one parses the body: a request the per-address one
    refused is worth neither); else None."""
    for throttle in (throttle_class(username) for throttle_class in LOGIN_THROTTLES):
        if not throttle.allow_request(request, view):
            return throttle.wait()
    return None
