"""What the README and docs/ point to exists: every relative link's file and heading,
every file of the project named in backticks, and every test named as a claim's proof
(docs/reliability.md's table names its tests so that anyone can run them: a test
renamed or moved left a claim pointing at nothing)."""

import functools
import re
import subprocess
from pathlib import Path

import pytest

from tests.live import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A project file named in backticks: a path with an extension, then maybe a test.
FILE = re.compile(r"`((?:tests|bench|scripts|deploy|omnitron|accounts|orders|capture|events)"
                  r"/[\w/.-]+\.\w+)(?:::(\w+)[^`]*)?`")  # fmt: skip
# A test of the file named last before it in the same paragraph (or table row), as
# `::test_x` or `test_x`.
SAME_FILE_TEST = re.compile(r"`(?:::)?(test_\w+)[^`]*`")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    heading = heading.strip().lower().replace("`", "").replace("*", "")
    return "".join(c for c in heading if c.isalnum() or c in " -_").replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen = set(), {}
    for heading in re.findall(r"^#+\s+(.*)$", page.read_text(), flags=re.M):
        name = slug(heading)
        found.add(f"{name}-{seen[name]}" if name in seen else name)
        seen[name] = seen.get(name, 0) + 1
    return found


def defines(path: Path, test: str) -> bool:
    return re.search(rf"^(?:async )?def {re.escape(test)}\(", path.read_text(), re.M) is not None


def broken_links(page: Path) -> list[str]:
    """Relative links whose file, or heading in it, does not exist."""
    prose = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if (
            not linked.exists()
            or anchor
            and linked.suffix == ".md"
            and anchor not in anchors(linked)
        ):
            broken.append(target)
    return broken


def missing_names(page: Path) -> list[str]:
    """Project files and tests named in backticks that do not exist."""
    missing = []
    for block in re.split(r"\n\s*\n", page.read_text()):
        named = None
        for line in block.splitlines():
            if line.startswith("|"):  # a table row stands alone
                named = None
            for match in re.finditer(f"{FILE.pattern}|{SAME_FILE_TEST.pattern}", line):
                path, test, same_file_test = match.groups()
                if path:
                    named = ROOT / path
                    if not named.is_file():
                        missing.append(path)
                    elif test and not defines(named, test):
                        missing.append(f"{path}::{test}")
                elif named is None or not named.is_file() or not defines(named, same_file_test):
                    missing.append(f"::{same_file_test}")
    return missing


# A file named without its directory (`gunicorn.conf.py`, operations.md's code layout:
# `idempotency.py`); PostgreSQL's own files are not the project's.
BARE_FILE = re.compile(r"`([\w.-]+\.(?:py|yml|yaml|toml|lock|json|ini|sh|md|template|conf))`")
NOT_OURS = {"pg_hba.conf", "postgresql.conf"}


def missing_bare_names(page: Path, root: Path = ROOT) -> list[str]:
    """Files named without a directory that no file of the project is called."""
    names = file_names(root)
    named = BARE_FILE.findall(page.read_text())
    return [name for name in named if name not in names and name not in NOT_OURS]


@functools.cache
def file_names(root: Path) -> frozenset[str]:
    """The names of the project's files (git's, so no virtualenv or cache counts)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=root, capture_output=True, text=True, check=False).stdout  # fmt: skip
    if not listed:  # not a git checkout (the test's own directory)
        return frozenset(path.name for path in root.rglob("*") if path.is_file())
    return frozenset(Path(line).name for line in listed.splitlines())


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_file_named_without_its_directory_exists(page):
    """A module renamed or removed left the code layout (operations.md) naming it; the
    check of paths above only reads names with a directory."""
    assert missing_bare_names(page) == []


def test_a_bare_name_that_no_file_has_is_missing(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "here.py").write_text("")
    page = tmp_path / "page.md"
    page.write_text("`here.py`, `gone.py`, `pg_hba.conf`, `page.md`, `here.py::x`\n")
    assert missing_bare_names(page, tmp_path) == ["gone.py"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_leads_to_a_file_and_heading_that_exist(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_file_and_test_named_exists(page):
    assert missing_names(page) == []


def test_what_does_not_exist_is_named(tmp_path):
    (tmp_path / "other.md").write_text("# Other page: with `code`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Here\n\n[a](other.md#other-page-with-code) [b](#here) [c](gone.md) [d](#gone)\n"
        "[e](other.md#gone) [f](https://example.com/x.md)\n\n"
        "`tests/test_doc_references.py::test_what_does_not_exist_is_named[x]`, "
        "`::test_every_file_and_test_named_exists`, `::test_no_such`, `test_nor_this`, `tests/gone.py`,\n"
        "`tests/test_doc_references.py::no_such_test`, `orders/0009`, `::a.b.c.d`\n\n"
        "| `::test_every_link_leads_to_a_file_and_heading_that_exist` |\n"
    )
    assert broken_links(page) == ["gone.md", "#gone", "other.md#gone"]
    assert missing_names(page) == [
        "::test_no_such", "::test_nor_this", "tests/gone.py", "tests/test_doc_references.py::no_such_test",
        "::test_every_link_leads_to_a_file_and_heading_that_exist",  # no file in its row
    ]  # fmt: skip
