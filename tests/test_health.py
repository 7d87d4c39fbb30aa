"""The health checks: liveness without the database, readiness with it, and the
admin's 503 when the database fails."""

import pytest
import requests

from tests.live import (
    free_port,
    gunicorn,
    server_env,
)


def test_liveness_answers_without_the_database(client):
    # No django_db mark: pytest-django fails any database access in this test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readiness_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_readiness_is_503_json_when_the_database_is_unreachable():
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    with gunicorn(workers=1, env=server_env(DATABASE_URL=dead)) as (base, _):
        response = requests.get(f"{base}/readyz", timeout=10)
        assert response.status_code == 503
        assert response.json()["code"] == "database_unavailable"
        assert response.headers["Retry-After"] == "5"
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        api = requests.get(f"{base}/api/v1/orders/", headers={"Authorization": "Token x"},
                           timeout=10)  # fmt: skip
        assert (api.status_code, api.json()["code"]) == (503, "database_unavailable")
        assert api.headers["Retry-After"] == "5"


def test_a_page_the_database_fails_is_503_also_for_a_logged_in_operator():
    """Loading the session of the request's cookie failed again in the request's log
    line, after the 503 page was made: Django's 500."""
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    with gunicorn(workers=1, env=server_env(DATABASE_URL=dead)) as (base, _):
        session = {"sessionid": "a" * 32}
        for path, status in (("/admin/", 503), ("/admin/orders/order/", 503),
                             ("/admin/login/", 503), ("/nowhere/", 404)):  # fmt: skip
            response = requests.get(f"{base}{path}", cookies=session, timeout=10)
            assert response.status_code == status, (path, response.status_code)
        page = requests.get(f"{base}/admin/", cookies=session, timeout=10)
        assert "The database is not available" in page.text
        assert page.headers["Retry-After"] == "5"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("method", ["post", "put", "delete", "patch", "trace"])
def test_health_checks_answer_only_get_and_head(client, path, method):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"
    assert client.head(path).status_code == 200
