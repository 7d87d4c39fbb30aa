"""omnitron/metrics_files.py on real files: an ended process's counts are added to the
archives and its files removed; a running process's are left alone."""

import json
import logging
import os
import runpy
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client.mmap_dict import MmapedDict

from omnitron import metrics_files

ROOT = Path(__file__).resolve().parent.parent


def write(path, samples: dict[str, float]) -> None:
    counts = MmapedDict(str(path))
    for key, value in samples.items():
        counts.write_value(key, value, 0.0)
    counts.close()


def read(path) -> dict[str, float]:
    return {key: value for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path))}


def key(name: str, **labels) -> str:
    return json.dumps([name, f"{name}_total", labels, "help"], sort_keys=True)


def ended_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_files_of_ended_processes_are_folded_and_a_running_ones_stay(tmp_path):
    name = metrics_files.process_name
    first, second, killed, running = ended_pid(), ended_pid(), ended_pid(), os.getpid()
    host = socket.gethostname()
    requests_ok, requests_bad = key("requests", status="2xx"), key("requests", status="5xx")
    write(tmp_path / f"counter_{name(first)}.db", {requests_ok: 3, requests_bad: 1})
    write(tmp_path / f"counter_{name(second)}.db", {requests_ok: 4})
    write(tmp_path / f"histogram_{name(second)}.db", {key("latency", le="0.1"): 2})
    write(tmp_path / f"counter_{name(running)}.db", {requests_ok: 10})
    # Another host's, and another PID namespace's of this host (a pod's other
    # container): whether they ended cannot be told from here.
    write(tmp_path / f"counter_otherhost-1-{first}.db", {requests_ok: 100})
    write(tmp_path / f"counter_{host}-1-{first}.db", {requests_ok: 100})
    write(tmp_path / f"gauge_all_{name(first)}.db", {key("gauge"): 5})  # not summed
    # Empty: its process was killed as it made the file. Moved aside.
    (tmp_path / f"counter_{name(killed)}.db").touch()

    assert metrics_files.fold_ended(str(tmp_path)) == 3
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith(".fold.")) == sorted([
        "counter_archive.db", "histogram_archive.db", f"counter_{name(running)}.db",
        f"counter_otherhost-1-{first}.db", f"counter_{host}-1-{first}.db",
        f"gauge_all_{name(first)}.db", f"counter_{name(killed)}.db.unreadable",
    ])  # fmt: skip
    assert read(tmp_path / "counter_archive.db") == {requests_ok: 7, requests_bad: 1}
    assert read(tmp_path / "histogram_archive.db") == {key("latency", le="0.1"): 2}
    # The next ended process adds to what is archived.
    third = ended_pid()
    write(tmp_path / f"counter_{name(third)}.db", {requests_bad: 2})
    assert metrics_files.fold(str(tmp_path), name(third)) == 1
    assert read(tmp_path / "counter_archive.db") == {requests_ok: 7, requests_bad: 3}


def test_an_unreadable_file_is_moved_aside_not_counted_again_and_again(tmp_path, caplog):
    """A file's counts are read whole before any is archived: one that fails midway
    (corrupt) added its first counts to the archive, stayed, and was added again at
    every later fold."""
    name = metrics_files.process_name(ended_pid())
    path = tmp_path / f"counter_{name}.db"
    write(path, {key("requests", status="2xx"): 3, key("requests", status="5xx"): 1})
    data = bytearray(path.read_bytes())
    first_key = int.from_bytes(data[8:12], "little")
    second = 8 + 4 + first_key + (8 - (first_key + 4) % 8) + 16
    data[second : second + 4] = (10**6).to_bytes(4, "little")  # its key runs past the end
    path.write_bytes(bytes(data))
    for _ in range(2):
        metrics_files.fold(str(tmp_path), name)
    assert not path.exists()
    assert (tmp_path / f"counter_{name}.db.unreadable").exists()
    assert not (tmp_path / "counter_archive.db").exists()  # nothing of it archived
    assert "cannot be read" in caplog.text


def test_two_processes_folding_one_ended_process_at_once_both_finish(tmp_path):
    """gunicorn's master folds a killed worker's files (child_exit) while a webhook
    worker that is starting, or a second gunicorn sharing the directory, folds the same
    ended process (fold_ended). Each listed the files before it took the lock, so the
    one that got it second read files the first had removed: FileNotFoundError (the
    webhook worker did not start; in the master, gunicorn's main loop ended)."""
    name = metrics_files.process_name(ended_pid())
    requests_ok = key("requests", status="2xx")
    write(tmp_path / f"counter_{name}.db", {requests_ok: 3})
    write(tmp_path / f"histogram_{name}.db", {key("latency", le="0.1"): 2})
    errors = []

    def fold():
        try:
            metrics_files.fold(str(tmp_path), name)
        except Exception as exc:  # noqa: BLE001 - what the test is about
            errors.append(exc)

    folders = [threading.Thread(target=fold) for _ in range(2)]
    with metrics_files.locked(str(tmp_path), exclusive=False):  # a scrape in progress
        for folder in folders:
            folder.start()
        time.sleep(0.5)  # both have listed the files and wait for the lock
    for folder in folders:
        folder.join(timeout=10)
    assert errors == []
    assert read(tmp_path / "counter_archive.db") == {requests_ok: 3}
    assert not list(tmp_path.glob(f"*_{name}.db"))


@pytest.mark.parametrize("hook", ["child_exit", "on_starting"])
def test_a_fold_that_fails_does_not_stop_gunicorn(tmp_path, monkeypatch, caplog, hook):
    """gunicorn runs child_exit in its main loop and on_starting before it: an exception
    there stopped the master ("Unhandled exception in main loop", every worker gone) or
    kept it from starting at all. A fold fails when the archives or the lock file are
    another user's: `manage.py check` run as root with the app's directory created
    them (0644), and the next worker killed (a timeout, the OOM killer) took the app
    down, and each restart failed the same way, on the files it left. The counts can
    wait for a fold that works; the server cannot."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    dead = ended_pid()
    kept = tmp_path / f"counter_{metrics_files.process_name(dead)}.db"
    write(kept, {key("requests"): 1})

    def refused(directory, *args, **kwargs):  # as open() answers for root's archive, 0644
        raise PermissionError(
            13, "Permission denied", os.path.join(directory, "counter_archive.db")
        )

    monkeypatch.setattr(metrics_files, "fold", refused)
    server = SimpleNamespace(log=logging.getLogger("gunicorn.error"))
    if hook == "child_exit":
        conf["child_exit"](server, SimpleNamespace(pid=dead))
    else:
        conf["on_starting"](server)
    assert read(kept) == {key("requests"): 1}  # still counted, folded another time
    (warning,) = [r for r in caplog.records if r.name == "omnitron.metrics_files"]
    assert "not folded" in warning.getMessage()
    assert warning.exc_info[0] is PermissionError


def test_files_a_timed_out_fold_left_are_folded_at_the_next_workers_exit(tmp_path, monkeypatch):
    """Scrapes that overlap (three scrapers back to back, an outside test of `make run`)
    always hold the shared lock, and child_exit's fold of a killed worker gives up after
    a second ("not folded; they stay"). Its files were then folded only when gunicorn's
    master restarted: each worker killed while scrapes overlapped added files every
    scrape reads, the growth a4f92f8 ended. The next fold must take them too."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    server = SimpleNamespace(log=logging.getLogger("gunicorn.error"))
    first, second = ended_pid(), ended_pid()
    left = tmp_path / f"counter_{metrics_files.process_name(first)}.db"
    write(left, {key("requests"): 1})
    write(tmp_path / f"counter_{metrics_files.process_name(second)}.db", {key("requests"): 2})
    with metrics_files.locked(str(tmp_path), exclusive=False):  # a scrape reading the files
        conf["child_exit"](server, SimpleNamespace(pid=first))
    assert left.exists()  # timed out: left, still counted
    conf["child_exit"](server, SimpleNamespace(pid=second))  # no scrape now
    assert not left.exists()
    assert read(tmp_path / "counter_archive.db") == {key("requests"): 3}


def test_scrapes_that_overlap_do_not_keep_a_fold_out(tmp_path):
    """flock lets a shared lock in ahead of a waiting exclusive one: with scrapes always
    overlapping, one of them always held the lock, and a fold waited its whole second
    and gave up. A fold that waits now holds back the scrapes that come after it."""
    name = metrics_files.process_name(ended_pid())
    write(tmp_path / f"counter_{name}.db", {key("requests"): 1})
    stop = threading.Event()

    def scrape():
        while not stop.is_set():
            with metrics_files.locked(str(tmp_path), exclusive=False):
                time.sleep(0.05)

    scrapers = [threading.Thread(target=scrape) for _ in range(3)]
    try:
        for scraper in scrapers:  # staggered: one of them always holds the lock
            scraper.start()
            time.sleep(0.017)
        time.sleep(0.2)
        started = time.monotonic()
        assert metrics_files.fold(str(tmp_path), name, wait=1) == 1
        waited = time.monotonic() - started
    finally:
        stop.set()
        for scraper in scrapers:
            scraper.join()
    assert waited < 0.5, waited
    assert read(tmp_path / "counter_archive.db") == {key("requests"): 1}
