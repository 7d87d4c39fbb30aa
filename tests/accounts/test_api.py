"""The accounts endpoints: login and the token's user. Their limits and token
rotation are in tests/reliability/test_access.py."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from accounts.authentication import TokenAuthentication
from omnitron.api.lookups import UserLookup


def test_active_user_answers_the_token_owner(api_client, api_user):
    response = api_client.get("/api/v1/active_user/")
    assert response.status_code == 200
    assert response.json()["username"] == api_user.username
    assert response.json()["pk"] == api_user.pk


def test_login_answers_the_token_and_refuses_bad_credentials(client, api_user):
    ok = client.post(
        "/api/v1/auth/login/", {"username": api_user.username, "password": "pw-123456"},
        content_type="application/json",
    )  # fmt: skip
    assert ok.status_code == 200
    assert ok.json() == {"key": api_user.auth_token.key}
    for username, password in [(api_user.username, "wrong"), ("nobody", "pw-123456")]:
        bad = client.post(
            "/api/v1/auth/login/", {"username": username, "password": password},
            content_type="application/json",
        )  # fmt: skip
        assert bad.status_code == 400
        assert bad.json() == {
            "non_field_errors": ["Unable to log in with provided credentials."],
            "code": "invalid_credentials",
        }


def test_an_inactive_users_token_is_refused_as_an_unknown_one(api_client, api_user):
    """Deactivating a user (the admin's "active" box) stops their token at once."""
    api_user.is_active = False
    api_user.save(update_fields=["is_active"])
    response = api_client.get("/api/v1/active_user/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token.", "code": "authentication_failed"}


class _Lookup(UserLookup):
    """A lookup of the token statement naming its parameter `param`."""

    def __init__(self, param):
        self.name, self.param = f"uses_{param}", param
        self.sql = f"SELECT %({param})s::text"

    def params(self, request):
        return {self.param: "the lookup's value"}


def test_a_lookup_naming_a_parameter_of_the_token_statement_is_refused(api_user):
    """The token statement and a view's lookups share one set of parameter names: a
    lookup naming its parameter `key` replaced the token in the statement (any token
    then read as no user), and one naming another lookup's read that one's value. A
    name taken twice is a configuration error, said at the first request."""

    def authenticate(*lookups):
        view = type("View", (APIView,), {"authentication_lookups": lookups})()
        request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {token}"),
                          parser_context={"view": view})  # fmt: skip
        return TokenAuthentication().authenticate(request)

    token = api_user.auth_token.key
    user, statement = authenticate(_Lookup("own_value"))
    assert user == api_user
    assert statement.lookups == {"uses_own_value": "the lookup's value"}
    with pytest.raises(ImproperlyConfigured, match=r"uses_key: parameters taken: \{'key'\}"):
        authenticate(_Lookup("key"))
    with pytest.raises(ImproperlyConfigured, match="uses_twice: parameters taken"):
        authenticate(_Lookup("twice"), _Lookup("twice"))
