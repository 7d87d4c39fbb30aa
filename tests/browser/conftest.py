"""Playwright driving Debian's Chromium against a live gunicorn and real PostgreSQL.

No `playwright install`: the browser is the system's /usr/bin/chromium. Without one
the tests skip, except under CI, where a missing browser fails. A failing test leaves
a screenshot and the page's HTML under test-artifacts/."""

import os
import shutil
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.live import ROOT, gunicorn

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts"
DOCS_IMAGES = ROOT / "docs" / "img"


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module. Playwright's sync API runs an event loop in this
    thread while it is open, so Django's async-safety check is lifted meanwhile."""
    path = chromium_path()
    if path is None:
        reason = "no Chromium: install Debian's chromium package (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI requires the browser tests")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture
def page(browser, request):
    """A fresh browser context. Requests that would leave the machine are blocked and
    listed in `page.outside_requests`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.outside_requests = []

    def guard(route):
        url = route.request.url
        if url.startswith(("data:", "blob:")) or is_loopback(url):
            route.continue_()
        else:
            page.outside_requests.append(url)
            route.abort()

    context.route("**/*", guard)
    page.set_default_timeout(15_000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = request.node.name.replace("/", "_")
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        (ARTIFACTS / f"{name}.html").write_text(page.content())
    context.close()


def save_docs_image(page, name: str) -> None:
    """Screenshots for the docs: written to docs/img/ when UPDATE_SCREENSHOTS=1."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=False)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMAGES / name), full_page=False)


@pytest.fixture
def app_server(transactional_db):
    with gunicorn(workers=2) as (base, _):
        yield base
