"""The generated OpenAPI schema: committed, valid, faithful to the seed, served offline."""

import hashlib
import json
import re
import time
from io import StringIO

import pytest
import yaml
from django.core.management import call_command

from tests.api.seed import SEED_PATH, SHARED_SEED_PATH, differences, load_seed, normalize
from tests.contract import ContractError, check_response, generated_schema
from tests.live import ROOT

STATUS_CODES = ["50", "100", "200", "300", "350", "400", "450", "500", "510", "520", "540",
                "544", "545", "546", "547", "550", "600"]  # fmt: skip
SEED_SHA256 = "086eb0cda7560977af19569a8963a75eb5abc021328fc3f4924d5487bb02abe2"
NULL_WHEN_ABSENT = "null when the order has none: this service does not model the object"

# Every way the generated schema may differ from the seed, each with its reason.
ALLOWED_DIFFERENCES = {
    ("Order", "status", "enum"): (
        "the status codes as strings: the seed declares type string but lists integers",
        STATUS_CODES,
    ),
    ("Order", "payment_option", "nullable"): (NULL_WHEN_ABSENT, True),
    ("Order", "installment", "nullable"): (NULL_WHEN_ABSENT, True),
    ("Order", "cargo_company", "nullable"): (NULL_WHEN_ABSENT, True),
    ("Order", "external_status", "nullable"): (NULL_WHEN_ABSENT, True),
    ("Order", "shipping_company", "nullable"): ("null when no shipping company is set", True),
    ("Order", "", "required"): (
        "every property is always present in an answer, so all 47 are required",
        None,  # checked below: a superset of the seed's six
    ),
    ("CaptureOrderSerializer", "", "type"): ("the seed omits `type: object`", "object"),
    ("CaptureOrderSerializer", "", "required"): (
        "order and order_items are required (the seed lists no required properties)",
        ["order", "order_items"],
    ),
    ("CaptureOrderSerializer", "channel", "property"): (
        "extension: picks the order when its number is in several of your channels",
        "present",
    ),
    ("CaptureOrderItemSerializer", "", "type"): ("the seed omits `type: object`", "object"),
    ("CaptureOrderItemSerializer", "", "required"): ("pk is required", ["pk"]),
    ("CaptureOrderItemSerializer", "pk", "format"): (
        "item ids are PostgreSQL bigints: at most 2**63 - 1",
        "int64",
    ),
}


def test_the_seed_copy_is_the_shared_seed():
    """The copy is the contract as it was given (its digest, recorded when it was
    copied), and the shared original beside the repository, where there is one, is
    that same file: this runs in a clone that has no ../shared too."""
    assert hashlib.sha256(SEED_PATH.read_bytes()).hexdigest() == SEED_SHA256
    if SHARED_SEED_PATH.exists():
        assert SHARED_SEED_PATH.read_bytes() == SEED_PATH.read_bytes()


def test_the_committed_openapi_yaml_is_what_the_code_generates(tmp_path):
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")
    committed = (ROOT / "openapi.yaml").read_text()
    assert generated.read_text() == committed, "openapi.yaml is stale: run `make schema`"


def test_the_schema_matches_the_seed_except_for_the_allowed_differences():
    found = differences(generated_schema(), load_seed())
    unexpected = {key: value for key, value in found.items() if key not in ALLOWED_DIFFERENCES}
    assert unexpected == {}
    for key, (reason, ours) in ALLOWED_DIFFERENCES.items():
        assert reason
        assert key in found, f"{key} no longer differs: drop it from the allow-list"
        if ours is not None:
            assert found[key][0] == ours, key


def test_order_requires_all_that_the_seed_requires_and_has_all_47_properties():
    order = generated_schema()["components"]["schemas"]["Order"]
    seed_order = load_seed()["components"]["schemas"]["Order"]
    assert set(seed_order["required"]) <= set(order["required"])
    assert list(order["properties"]) == list(seed_order["properties"])


def test_the_comparison_notices_a_difference():
    schema = json.loads(json.dumps(generated_schema()))
    schema["components"]["schemas"]["Order"]["properties"]["amount"]["type"] = "string"
    assert ("Order", "amount", "type") in differences(schema, load_seed())
    assert normalize({"type": "integer", "nullable": True}, {})["nullable"] is True


def test_the_capture_operation_documents_what_the_service_adds():
    operation = generated_schema()["paths"]["/api/v1/capture-order/"]["post"]
    assert set(operation["responses"]) >= {
        "200",
        "400",
        "401",
        "403",
        "409",
        "413",
        "415",
        "422",
        "503",
    }
    assert operation["responses"]["409"]["content"]["application/json"]["schema"]["properties"][
        "code"]["enum"] == ["order_locked", "idempotency_key_in_use", "deleted_meanwhile"]  # fmt: skip
    header = [p for p in operation["parameters"] if p["in"] == "header"]
    assert header[0]["name"] == "Idempotency-Key"
    paths = generated_schema()["paths"]
    for path in ["/api/v1/auth/login/", "/api/v1/orders/", "/api/v1/orders/{id}/",
                 "/api/v1/order_items/", "/api/v1/captures/{id}/"]:  # fmt: skip
        assert path in paths


def test_the_headers_a_client_acts_on_are_declared_where_they_are_sent():
    """Retry-After and Idempotent-Replayed were only named in descriptions: a client
    generated from the document could not read them (an outside test)."""
    paths = generated_schema()["paths"]
    capture = paths["/api/v1/capture-order/"]["post"]["responses"]
    for status_code in ("409", "429", "503"):  # order_locked, throttled, database_unavailable
        assert capture[status_code]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    for status_code in ("400", "422"):  # nothing there is worth a retry
        assert "Retry-After" not in capture[status_code].get("headers", {})
    assert set(capture["200"]["headers"]) == {"Idempotent-Replayed"}
    assert set(capture["400"]["headers"]) == {"Idempotent-Replayed"}  # a stored refusal
    login = paths["/api/v1/auth/login/"]["post"]["responses"]
    assert "Retry-After" in login["429"]["headers"]


def test_the_seeds_enums_name_their_members():
    """A client generated from the document called OrderStatus's "400" VALUE_5."""
    schema = generated_schema()
    status = schema["components"]["schemas"]["OrderStatus"]
    named = dict(zip(status["enum"], status["x-enum-varnames"], strict=True))
    assert (named["400"], named["50"], named["600"]) == ("APPROVED", "CANCELLATION_WAITING",
                                                         "REFUNDED")  # fmt: skip
    parameter = next(p for p in schema["paths"]["/api/v1/orders/"]["get"]["parameters"]
                     if p["name"] == "status")  # fmt: skip
    assert parameter["schema"]["x-enum-varnames"] == status["x-enum-varnames"]


def test_the_contract_check_fails_an_answer_that_breaks_the_schema():
    body = json.dumps({"pk": 1, "status": 400}).encode()
    with pytest.raises(ContractError, match="breaks the schema"):
        check_response("GET", "/api/v1/orders/1/", 200, "application/json", body)
    with pytest.raises(ContractError, match="not documented"):
        check_response("GET", "/api/v1/orders/1/", 418, "application/json", b"{}")
    unregistered = json.dumps({"detail": "x", "code": "made_up"}).encode()
    with pytest.raises(ContractError, match="not registered"):
        check_response("GET", "/api/v1/orders/1/", 404, "application/json", unregistered)
    with pytest.raises(ContractError, match="not JSON"):
        check_response("GET", "/api/v1/orders/", 500, "text/html", b"<h1>oops</h1>")


@pytest.mark.django_db
def test_schema_is_served_as_yaml_and_json_without_auth(client):
    as_yaml = client.get("/api/schema/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert as_yaml.status_code == 200
    assert yaml.safe_load(as_yaml.content)["info"]["title"] == "Omnitron API"
    as_json = client.get("/api/schema/?format=json")
    assert as_json.status_code == 200
    assert as_json["Content-Type"] == "application/vnd.oai.openapi+json"
    assert json.loads(as_json.content)["paths"]["/api/v1/capture-order/"]


@pytest.mark.django_db
def test_the_schema_takes_only_its_own_language(client):
    """Django keeps what it loads for every language name asked for, for ever: a new
    ?lang= a request grew every worker by 41 KB (2,410 requests: 96 MB) and built
    the schema again each time."""
    from django.utils.translation import trans_real

    english = client.get("/api/schema/?format=json&lang=en")
    assert english.status_code == 200
    assert json.loads(english.content)["info"]["title"] == "Omnitron API"
    kept = len(trans_real._translations)
    for n in range(20):
        made_up = client.get(f"/api/schema/?format=json&lang=a{n}")
        assert made_up.status_code == 400
        assert made_up.json() == {"lang": ["Not one of: en."], "code": "invalid"}
    assert client.get("/api/schema/?lang=fr").status_code == 400
    assert len(trans_real._translations) == kept
    for page in ("/api/docs/", "/api/redoc/"):  # they pass theirs on to the schema
        assert client.get(f"{page}?lang=en").status_code == 200
        made_up = client.get(f"{page}?lang=xx")
        assert made_up.status_code == 400
        assert made_up.json() == {"lang": ["Not one of: en."], "code": "invalid"}


@pytest.mark.django_db
def test_the_schema_costs_a_tokenless_client_almost_nothing_after_the_first(client):
    """Anyone may ask for it, and rendering it took 30 ms of CPU as YAML every time:
    ten clients asking in a loop slowed every other request to 0.6 to 1 s."""
    first = client.get("/api/schema/")
    started = time.process_time()
    answers = [client.get("/api/schema/") for _ in range(20)]
    spent = time.process_time() - started
    assert {answer.content for answer in answers} == {first.content}
    assert first["Content-Type"] == "application/vnd.oai.openapi; charset=utf-8"
    assert first["Content-Disposition"] == 'inline; filename="Omnitron API.yaml"'
    assert spent < 0.2, spent  # 20 renderings took 0.6 s here


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_only_from_this_service(client, page):
    response = client.get(page)
    assert response.status_code == 200
    assert "default-src 'self'" in response["Content-Security-Policy"]
    html = response.content.decode()
    # No CDN: every script, stylesheet and icon comes from this app's static files.
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert external == []
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
@pytest.mark.parametrize("method", ["options", "post", "delete"])
def test_docs_pages_refuse_other_methods_in_json(client, page, method):
    response = getattr(client, method)(page)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": f'Method "{method.upper()}" not allowed.',
        "code": "method_not_allowed",
    }
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_spectacular_validation_is_clean():
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert "openapi: 3.0.3" in out.getvalue()
