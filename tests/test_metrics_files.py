"""omnitron/metrics_files.py on real files: an ended process's counts are added to the
archives and its files removed; a running process's are left alone."""

import json
import os
import socket
import subprocess
import sys

from prometheus_client.mmap_dict import MmapedDict

from omnitron import metrics_files


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
    host = socket.gethostname()
    first, second, running = ended_pid(), ended_pid(), os.getpid()
    requests_ok, requests_bad = key("requests", status="2xx"), key("requests", status="5xx")
    write(tmp_path / f"counter_{host}-{first}.db", {requests_ok: 3, requests_bad: 1})
    write(tmp_path / f"counter_{host}-{second}.db", {requests_ok: 4})
    write(tmp_path / f"histogram_{host}-{second}.db", {key("latency", le="0.1"): 2})
    write(tmp_path / f"counter_{host}-{running}.db", {requests_ok: 10})
    write(tmp_path / f"counter_otherhost-{first}.db", {requests_ok: 100})  # not this host's
    write(tmp_path / f"gauge_all_{host}-{first}.db", {key("gauge"): 5})  # not summed

    assert metrics_files.fold_ended(str(tmp_path)) == 3
    assert sorted(path.name for path in tmp_path.glob("*.db")) == sorted([
        "counter_archive.db", "histogram_archive.db", f"counter_{host}-{running}.db",
        f"counter_otherhost-{first}.db", f"gauge_all_{host}-{first}.db",
    ])  # fmt: skip
    assert read(tmp_path / "counter_archive.db") == {requests_ok: 7, requests_bad: 1}
    assert read(tmp_path / "histogram_archive.db") == {key("latency", le="0.1"): 2}
    # The next ended process adds to what is archived.
    third = ended_pid()
    write(tmp_path / f"counter_{host}-{third}.db", {requests_bad: 2})
    assert metrics_files.fold(str(tmp_path), metrics_files.process_name(third)) == 1
    assert read(tmp_path / "counter_archive.db") == {requests_ok: 7, requests_bad: 3}
