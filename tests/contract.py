"""Validate API responses against the generated OpenAPI schema.

conftest.py routes every response of the test suite through `check_response`: the
Django test client's and those of `requests` sessions talking to a live server on
loopback. A documented operation's answer must match the schema documented for its
status code; anything else under /api/ must at least be JSON with a `code`. Every
error's `code` must be in the error code registry with the answer's status."""

import re
import threading
from functools import cache

import jsonschema
from drf_spectacular.generators import SchemaGenerator

from omnitron import exactjson
from omnitron.api.error_codes import registries

# Pages (HTML) and the schema itself are not JSON answers of the API; their errors are.
NOT_JSON_PATHS = ("/api/docs/", "/api/redoc/", "/api/schema/")


class ContractError(AssertionError):
    pass


_generation = threading.RLock()


@cache
def _generate() -> dict:
    # The project's URLs, whatever a test overrides them with (a test's own failing
    # view is then no documented operation, as it is not in openapi.yaml).
    return SchemaGenerator(urlconf="omnitron.urls").get_schema(request=None, public=True)


def generated_schema() -> dict:
    # Tests check answers from many threads at once; drf-spectacular's generator is
    # not safe to run concurrently, so it runs once, under a lock.
    with _generation:
        return _generate()


def to_json_schema(node, components: dict, seen: tuple = ()):
    """OpenAPI 3.0 schema -> JSON Schema: refs inlined, `nullable` made a type union."""
    if isinstance(node, list):
        return [to_json_schema(value, components, seen) for value in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        if name in seen:
            raise ContractError(f"recursive schema {name} is not supported")
        return to_json_schema(components[name], components, (*seen, name))
    converted = {
        key: to_json_schema(value, components, seen)
        for key, value in node.items()
        if key not in ("nullable", "readOnly", "writeOnly", "example", "examples")
    }
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@cache
def _operations():
    schema = generated_schema()
    components = schema.get("components", {}).get("schemas", {})
    operations = []
    for template, methods in schema["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
        for method, operation in methods.items():
            responses = {}
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {}).get("application/json")
                if content:
                    responses[status] = to_json_schema(content["schema"], components)
            operations.append((method.upper(), pattern, responses))
    return operations


def find_operation(method: str, path: str):
    with _generation:
        operations = _operations()
    for op_method, pattern, responses in operations:
        if op_method == method.upper() and pattern.match(path):
            return responses
    return None


@cache
def registered_statuses() -> dict[str, int]:
    """Every registered error code and its status."""
    return {error.code: error.status_code for registry in registries() for error in registry}


def _check_registered(where: str, status: int, body) -> None:
    if status < 400:
        return
    code = body.get("code") if isinstance(body, dict) else None
    if registered_statuses().get(code) != status:
        raise ContractError(f"{where}: code {code!r} is not registered with this status")


def check_response(method: str, path: str, status: int, content_type: str, content: bytes):
    if not path.startswith("/api/") or method == "OPTIONS":
        return
    if path.startswith(NOT_JSON_PATHS) and status < 400:
        return
    if status == 204 or method == "HEAD":
        return
    where = f"{method} {path} -> {status}"
    if not content_type.startswith("application/json"):
        raise ContractError(f"{where}: answered {content_type!r}, not JSON")
    body = exactjson.loads(content)  # numbers of any size, as clients may receive them
    responses = find_operation(method, path)
    if responses is None:
        # No such operation: an error, in the one error shape.
        if status < 400 or not isinstance(body, dict) or "code" not in body:
            raise ContractError(f"{where}: undocumented answer {body!r}")
        _check_registered(where, status, body)
        return
    schema = responses.get(str(status))
    if schema is None:
        raise ContractError(f"{where}: status {status} is not documented for this operation")
    _check_registered(where, status, body)
    try:
        jsonschema.validate(body, schema)
    except jsonschema.ValidationError as exc:
        raise ContractError(f"{where}: breaks the schema: {exc.message}") from exc
