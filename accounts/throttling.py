"""Login attempts, limited per client address and per username (the rates are
DEFAULT_THROTTLE_RATES' `login_address` and `login_username`)."""

import hashlib

from omnitron.api.throttling import PostgresRateThrottle


class LoginThrottle(PostgresRateThrottle):
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
    """Per username, whatever the address: slows password guessing."""

    scope = "login_username"

    def identity(self, request):
        username = request.data.get("username") if isinstance(request.data, dict) else None
        return username if isinstance(username, str) and username else None
