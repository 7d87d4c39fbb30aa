"""The accounts endpoints: login and the token's user. Their limits and token
rotation are in tests/reliability/test_access.py."""


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
