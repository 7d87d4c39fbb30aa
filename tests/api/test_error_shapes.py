"""Every error of the API is JSON with a code, the schema's too; the admin keeps its
HTML pages."""

import pytest


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/api/v1/no-such-endpoint/", 404, "not_found"),
        ("post", "/api/v1/capture-order", 404, "not_found"),  # no redirect that drops the body
        ("get", "/api/v1/active_user/", 401, "not_authenticated"),
        # The method is judged first: the path never takes a GET, token or not.
        ("get", "/api/v1/capture-order/", 405, "method_not_allowed"),
        # Outside /api/ too: only the admin's pages are HTML.
        ("get", "/", 404, "not_found"),
        ("get", "/healthz/", 404, "not_found"),
        ("get", "/API/v1/orders/", 404, "not_found"),
        ("post", "/api", 404, "not_found"),
    ],
)
def test_api_errors_are_json_with_a_code(client, method, path, status, code):
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code


@pytest.mark.django_db
def test_admin_keeps_its_html_pages(client, admin_client):
    """The API's JSON errors stop at /api/: the admin answers an unknown page the
    admin's way (to the login page first, so its URLs are not probed without one)."""
    anonymous = client.get("/admin/no-such-page/")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/admin/login/?next=/admin/no-such-page/"
    missing = admin_client.get("/admin/no-such-page/")
    assert missing.status_code == 404
    assert missing["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url", "headers", "status"),
    [("get", "/api/schema/?format=xml", {}, 406),  # a format it does not answer
     ("get", "/api/schema/", {"HTTP_ACCEPT": "text/html"}, 406),
     ("post", "/api/schema/", {}, 405)],
)  # fmt: skip
def test_schema_errors_are_json_with_a_string_detail(client, method, url, headers, status):
    response = getattr(client, method)(url, **headers)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.json()["detail"], str)
