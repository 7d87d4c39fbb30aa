"""The error code registries agree with everything built from them or beside them:
the exceptions, DRF's own exceptions, gunicorn's answers, the schema, the docs."""

import json
import re

import pytest
import yaml
from rest_framework import exceptions

from capture import exceptions as capture_exceptions
from omnitron import gunicorn_errors
from omnitron.api.error_codes import ApiErrorCode, registries
from omnitron.api.exceptions import CodedError
from omnitron.api.management.commands.error_table import DOC, with_table
from tests.live import ROOT


def all_codes():
    return [error for registry in registries() for error in registry]


def test_every_code_is_registered_once():
    codes = [error.code for error in all_codes()]
    assert len(codes) == len(set(codes))
    assert {"already_captured", "invalid_credentials", "database_unavailable"} <= set(codes)


def test_the_docs_error_table_is_what_the_registry_generates():
    text = DOC.read_text()
    assert with_table(text) == text, "docs/api.md's error table is stale: run `make schema`"
    for error in all_codes():
        assert f"`{error.code}`" in text


def api_md_rules() -> dict[str, str]:
    """docs/api.md's rules by number ("6", "8.2"), each with the text of its lines."""
    text = DOC.read_text()
    section = text.split("## Rules, in the order they are checked", 1)[1].split("\n## ", 1)[0]
    rules, number = {}, None
    for line in section.splitlines():
        if top := re.match(r"(\d+)\. ", line):
            number = top.group(1)
        elif sub := re.match(r" {3}(\d+)\. ", line):
            number = f"{number.split('.')[0]}.{sub.group(1)}"
        if number:
            rules[number] = rules.get(number, "") + line
    return rules


def test_a_codes_rule_number_is_the_rule_of_api_md_that_names_it():
    """A code's `when` names its rule by number ("Rule 8.2: ..."), and so do the schema
    and the docs' error table made from it: a rule put in between renumbers the rules
    after it, here and in docs/api.md alike."""
    rules = api_md_rules()
    cited = [(error, re.match(r"Rule ([\d.]+):", error.when)) for error in all_codes()]
    cited = [(error, match.group(1)) for error, match in cited if match]
    assert len(cited) >= 14
    for error, number in cited:
        assert f"`{error.code}`" in rules[number], (error.code, number)


def test_coded_exceptions_take_status_code_and_message_from_the_registry():
    classes = [c for c in vars(capture_exceptions).values()
               if isinstance(c, type) and issubclass(c, CodedError) and "error" in c.__dict__]  # fmt: skip
    assert len(classes) >= 10
    for cls in classes:
        assert (cls.status_code, cls.default_code, cls.field) == (
            cls.error.status_code, cls.error.code, cls.error.field)  # fmt: skip
    assert str(capture_exceptions.AlreadyCaptured([5, 3]).detail) == (
        "Order items already captured: 3, 5."
    )


# DRF raises these itself, with its own status and code; the registry documents them.
DRF_EXCEPTIONS = {
    exceptions.ParseError: ApiErrorCode.PARSE_ERROR,
    exceptions.NotAuthenticated: ApiErrorCode.NOT_AUTHENTICATED,
    exceptions.AuthenticationFailed: ApiErrorCode.AUTHENTICATION_FAILED,
    exceptions.PermissionDenied: ApiErrorCode.PERMISSION_DENIED,
    exceptions.NotFound: ApiErrorCode.NOT_FOUND,
    exceptions.MethodNotAllowed: ApiErrorCode.METHOD_NOT_ALLOWED,
    exceptions.NotAcceptable: ApiErrorCode.NOT_ACCEPTABLE,
    exceptions.UnsupportedMediaType: ApiErrorCode.UNSUPPORTED_MEDIA_TYPE,
    exceptions.Throttled: ApiErrorCode.THROTTLED,
}


@pytest.mark.parametrize(("exception", "error"), DRF_EXCEPTIONS.items())
def test_drfs_own_exceptions_agree_with_the_registry(exception, error):
    assert (exception.status_code, exception.default_code) == (error.status_code, error.code)


def test_gunicorns_answers_use_registered_codes_and_details():
    registered = {error.code: (error.status_code, error.message) for error in all_codes()}
    for status, (code, detail) in gunicorn_errors.ERRORS.items():
        assert registered[code] == (status, detail), code
    assert ApiErrorCode.URI_TOO_LONG.code in dict(gunicorn_errors.ERRORS.values())


def test_the_proxys_answers_use_registered_codes_and_details():
    """deploy/nginx answers some errors itself, as JSON written into its template."""
    template = (ROOT / "deploy" / "nginx" / "omnitron.conf.template").read_text()
    registered = {error.code: (error.status_code, error.message) for error in all_codes()}
    answers = re.findall(r"return (\d+) '(\{.*\})';", template)
    assert len(answers) >= 10
    for status, quoted in answers:
        answer = json.loads(re.sub(r"\\(.)", r"\1", quoted))  # nginx's \x is x
        status_code, message = registered[answer["code"]]
        # The 405's method is nginx's variable, filled in as the registry's {method} is.
        expected = message.format(method="$omnitron_refused_method")
        assert (status_code, expected) == (int(status), answer["detail"])


def test_every_code_the_schema_documents_is_registered():
    schema = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    registered = {error.code: error.status_code for error in all_codes()}
    documented = 0
    for methods in schema["paths"].values():
        for operation in methods.values():
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json", {})
                enum = content.get("schema", {}).get("properties", {}).get("code", {}).get("enum")
                for code in enum or []:
                    assert registered.get(code) == int(status), (code, status)
                    assert re.search(rf"`{code}`", response["description"])
                    documented += 1
    assert documented > 50


def test_a_rules_statuses_read_as_a_list_in_words_however_many():
    """A rule of one status read "( or review_waiting)" (helper 127); none has one yet."""
    from capture.error_codes import _one_of
    from orders.enums import OrderStatus as S

    assert _one_of({S.REVIEW_WAITING}) == "review_waiting"
    assert _one_of({S.CANCELED, S.REFUNDED}) == "canceled or refunded"
    assert _one_of({S.CANCELLATION_WAITING, S.CANCELED, S.REFUNDED}) == (
        "cancellation_waiting, canceled or refunded"
    )
