"""The import graph points one way: capture -> events -> orders -> omnitron, accounts ->
omnitron.
Settings name the apps as strings; that is how the project wires them."""

import ast

import pytest

from tests.live import ROOT

APPS = ("omnitron", "accounts", "orders", "events", "capture")
ALLOWED = {
    "omnitron": {"omnitron"},
    "accounts": {"accounts", "omnitron"},
    "orders": {"orders", "accounts", "omnitron"},
    "events": {"events", "orders", "omnitron"},
    "capture": {"capture", "events", "orders", "omnitron"},
}


def imported_apps(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & set(APPS)
    return found


@pytest.mark.parametrize("app", APPS)
def test_an_app_imports_only_the_apps_below_it(app):
    modules = [p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]
    assert modules
    wrong = {str(p.relative_to(ROOT)): imported_apps(p) - ALLOWED[app] for p in modules}
    assert {path: apps for path, apps in wrong.items() if apps} == {}


def test_the_check_sees_an_import_that_points_up(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from capture.models import Capture\nimport orders.models\n")
    assert imported_apps(module) == {"capture", "orders"}
