"""Requests built to break the service get a 4xx with the API's coded JSON, never a
500: too many query fields, a crafted schema version, a form Django cannot read on a
page outside the API, OPTIONS on the docs pages, a method a path does not take, and a
made-up X-Forwarded-For."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer2, OpenApiYamlRenderer

from omnitron.api.docs import SchemaView
from tests.helpers import CAPTURE_URL, throttle_rates

pytestmark = pytest.mark.django_db

TOO_MANY_FIELDS = "&".join(f"x{n}=1" for n in range(1001))  # Django's limit is 1,000


@pytest.mark.parametrize(
    "url", ["/api/v1/orders/", "/api/v1/captures/", "/api/v1/events/", "/api/v1/active_user/",
            "/api/schema/"],
)  # fmt: skip
def test_more_query_fields_than_django_reads_are_a_bad_request(api_client, url):
    response = api_client.get(f"{url}?{TOO_MANY_FIELDS}")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


@pytest.mark.parametrize("version", ["%0a", "%0d%0aX-Injected:%201", "%22;%20filename=evil.exe"])
def test_a_schema_version_from_the_client_reaches_no_header(client, version):
    response = client.get(f"/api/schema/?version={version}")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'inline; filename="Omnitron API.yaml"'
    assert b"evil" not in response.content
    assert b"Injected" not in response.content


@pytest.mark.parametrize(("url", "status"), [("/nope/", 404), ("/admin/login/", 400)])
def test_a_form_django_cannot_read_outside_the_api_is_not_a_500(url, status):
    """Django's error pages check the CSRF token, which reads the form: it failed again
    in every error handler."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.cookies["csrftoken"] = "A" * 32
    response = client.post(
        url, b"x=1", content_type="application/x-www-form-urlencoded; charset=latin-1",
        HTTP_X_CSRFTOKEN="A" * 32,
    )  # fmt: skip
    assert response.status_code == status


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_options_on_the_docs_pages_is_not_allowed(url):
    response = Client(raise_request_exception=False).options(url)
    assert response.status_code == 405


def test_a_made_up_forwarded_address_gets_no_login_limit_of_its_own(client, settings):
    """Without a proxy (API_NUM_PROXIES=0) the limit counts the connection's address,
    whatever X-Forwarded-For says."""
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0
    body = {"username": "nobody", "password": "wrong"}
    with throttle_rates(login_address="3/min"):
        codes = [
            client.post("/api/v1/auth/login/", {**body, "username": f"u{n}"},
                        content_type="application/json",
                        HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
            for n in range(5)
        ]  # fmt: skip
    assert codes[:3] == [400, 400, 400]
    assert codes[3:] == [429, 429]


def test_the_schema_is_built_once_for_every_anonymous_request(client, monkeypatch):
    """Building it is 0.1 to 0.2 s of CPU, and it needs no token."""
    SchemaView.built.clear()
    built = []
    real = SchemaGenerator.get_schema
    monkeypatch.setattr(
        SchemaGenerator, "get_schema", lambda *a, **k: built.append(1) or real(*a, **k)
    )
    answers = [client.get("/api/schema/", HTTP_ACCEPT=accept)
               for accept in ("application/vnd.oai.openapi", "application/json")] * 2  # fmt: skip
    assert [answer.status_code for answer in answers] == [200] * 4
    assert answers[0].content == answers[2].content
    assert answers[1].json() == answers[3].json()
    assert len(built) == 1


@contextmanager
def collector_passes() -> Iterator[list[int]]:
    """The generations of the cycle collector's passes while the block runs."""
    passes = []

    def count(phase, info):
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(count)
    try:
        yield passes
    finally:
        gc.callbacks.remove(count)


def test_a_large_body_is_parsed_without_the_collector_walking_the_app(client, api_client):
    """85,000 empty lists in 255 KB, without a token: parsing it for the order's read
    set off some 120 collector passes, one of them over every object of the app (60 to
    200 ms a request under gunicorn). With a token the strict parser reads
    it too."""
    lists = b",".join([b"[]"] * 85_000)
    body = b'{"order": "x", "order_items": [{"pk": 1, "attributes": {"a": [' + lists + b"]}}]}"
    for warming in (client, api_client):  # a client's first request loads the middleware
        warming.get("/healthz")
    with collector_passes() as passes:
        answer = client.post(CAPTURE_URL, body, content_type="application/json",
                             HTTP_AUTHORIZATION="Token " + "0" * 40)  # fmt: skip
    assert answer.status_code == 401
    assert len(passes) <= 10  # 125 and more before
    with collector_passes() as passes:
        answer = api_client.post(CAPTURE_URL, body, content_type="application/json")
    assert answer.json()["code"] == "attributes_too_large"
    assert len(passes) <= 10  # 125 and more before


def test_the_schema_is_rendered_once_whatever_else_an_accept_says(client, monkeypatch):
    """Only the format and a JSON indent change the body: an Accept with a q= (a
    browser's) or a made-up parameter was rendered again for each request, 67 to 137
    ms of CPU without a token."""
    SchemaView.rendered.clear()
    rendered = []
    for renderer in (OpenApiYamlRenderer, OpenApiJsonRenderer2):
        real = renderer.render
        monkeypatch.setattr(
            renderer, "render", lambda *a, real=real, **k: rendered.append(1) or real(*a, **k)
        )
    yaml_accepts = ["application/vnd.oai.openapi", "application/vnd.oai.openapi; x=1",
                    "application/vnd.oai.openapi;q=0.9",
                    "text/html,application/xhtml+xml,*/*;q=0.8"]  # fmt: skip
    answers = [client.get("/api/schema/", HTTP_ACCEPT=accept) for accept in yaml_accepts * 2]
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.content for answer in answers}) == 1
    assert len(rendered) == 1
    indented = [client.get("/api/schema/", HTTP_ACCEPT=f"application/json; indent={n}; q=1")
                for n in (2, 2, 0, 0)]  # fmt: skip
    assert len({answer.content for answer in indented}) == 2
    # The answer's type is the renderer's: a charset the client named was echoed back
    # over a UTF-8 body.
    latin = client.get("/api/schema/", HTTP_ACCEPT="application/json; charset=latin-1")
    assert latin["Content-Type"] == "application/json"
    utf16 = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi; charset=utf-16")
    assert utf16["Content-Type"] == "application/vnd.oai.openapi; charset=utf-8"
    assert indented[0].content.startswith(b'{\n  "openapi"')
    assert len(rendered) == 3


@pytest.mark.parametrize(
    ("method", "url", "allow"),
    [
        ("trace", "/api/v1/captures/?format=csv", "GET, HEAD, OPTIONS"),
        ("delete", "/api/v1/orders/1/", "GET, PATCH, HEAD, OPTIONS"),
        ("put", "/api/v1/capture-order/", "POST, OPTIONS"),
        ("options", "/api/schema/", "GET, HEAD"),
        ("delete", "/api/docs/?format=csv", "GET, HEAD"),
    ],
)
def test_a_method_a_path_does_not_take_is_405_before_anything_else(client, method, url, allow):
    """Without a token, and whatever the Accept: DRF judged the method last (a TRACE of
    the CSV export was 406, a DELETE without a token 401, the schema's OPTIONS YAML)."""
    response = client.generic(method.upper(), url, HTTP_ACCEPT="application/xml")
    assert response.status_code == 405
    assert response.json() == {
        "detail": f'Method "{method.upper()}" not allowed.',
        "code": "method_not_allowed",
    }
    assert response["Allow"] == allow


def test_options_describes_a_view_without_its_docstring(api_client):
    response = api_client.options("/api/v1/events/")
    assert response.status_code == 200
    assert response.json()["name"] == "Event Feed"
    assert "description" not in response.json()


def wsgi(method, path, token):
    """The answer as the WSGI server gets it (Django's test client drops a HEAD's body
    itself): status, headers, body."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.client import RequestFactory

    environ = RequestFactory()._base_environ(
        REQUEST_METHOD=method, PATH_INFO=path.partition("?")[0],
        QUERY_STRING=path.partition("?")[2], HTTP_AUTHORIZATION=f"Token {token}",
    )  # fmt: skip
    started = {}
    body = WSGIHandler()(environ, lambda status, headers: started.update(status=status,
                                                                          headers=dict(headers)))  # fmt: skip
    return started["status"], started["headers"], b"".join(body)


@pytest.mark.django_db(transaction=True)
def test_a_head_answers_the_gets_headers_without_its_body(api_user, order):
    """gunicorn dropped the body and logged a warning for every HEAD; the CSV export
    was produced whole first."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token = api_user.auth_token.key
    get_status, get_headers, get_body = wsgi("GET", "/api/v1/orders/", token)
    status, headers, body = wsgi("HEAD", "/api/v1/orders/", token)
    assert (status, body) == (get_status, b"")
    assert get_body
    assert headers["Content-Length"] == get_headers["Content-Length"] == str(len(get_body))
    with CaptureQueriesContext(connection) as queries:
        status, headers, body = wsgi("HEAD", "/api/v1/captures/?format=csv", token)
    assert (status, headers["Content-Type"], body) == ("200 OK", "text/csv; charset=utf-8", b"")
    # No row is read (only the export's bounded count, so that HEAD's status is GET's).
    reads = [q["sql"] for q in queries.captured_queries if "capture_captureitem" in q["sql"]]
    assert all(sql.startswith("SELECT COUNT(*)") for sql in reads), reads
