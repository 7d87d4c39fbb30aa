"""CPU per request, from /proc tick counts: the app's (every process of the gunicorn
server's session) and PostgreSQL's (the postmaster and its children: backends,
WAL writer, checkpointer, autovacuum), each read before and after a wrk run and
divided by the requests it served. Both sides are on this machine, so this says
where a capture's time goes when both are CPU-bound, which throughput alone cannot.

Only for a local PostgreSQL (the benchmark's own cluster): when the database is
elsewhere its processes are not in /proc, and PostgreSQL's figures are None."""

import os
from pathlib import Path

import psycopg

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, or None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _ticks(fields: list[str], *, children: bool) -> int:
    # utime, stime, then (reaped children) cutime, cstime: fields 14-17 of stat(5)
    own = int(fields[11]) + int(fields[12])
    return own + (int(fields[13]) + int(fields[14]) if children else 0)


def _processes() -> dict[int, list[str]]:
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = fields
    return stats


def session_ticks(leader: int) -> int:
    """CPU ticks of every process in the session `leader` leads (gunicorn's master
    and workers), the master's reaped children included (restarted workers)."""
    total = 0
    for pid, fields in _processes().items():
        if int(fields[3]) == leader:  # session id
            total += _ticks(fields, children=pid == leader)
    return total


def postmaster_pid(database_url: str) -> int | None:
    """The postmaster of the server behind `database_url`, when it runs here."""
    with psycopg.connect(database_url) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        fields = _stat(backend)
    if fields is None:  # not a process of this machine
        return None
    return int(fields[1])  # the parent of a backend is the postmaster


def postgres_ticks(postmaster: int) -> int:
    """CPU ticks of the postmaster and every child, ended backends included."""
    total = 0
    for pid, fields in _processes().items():
        if pid == postmaster:
            total += _ticks(fields, children=True)
        elif int(fields[1]) == postmaster:
            total += _ticks(fields, children=False)
    return total


class CpuMeter:
    """Ticks of the app (a gunicorn session) and of PostgreSQL around a run."""

    def __init__(self, app_session: int, database_url: str):
        self.app_session = app_session
        self.postmaster = postmaster_pid(database_url)

    def read(self) -> tuple[int, int | None]:
        pg = postgres_ticks(self.postmaster) if self.postmaster else None
        return session_ticks(self.app_session), pg

    def per_request(self, before, after, requests: int) -> dict:
        """Milliseconds of CPU per request, app and PostgreSQL, between two reads."""
        if not requests:
            return {"app_ms": None, "postgres_ms": None}
        app = (after[0] - before[0]) * TICK_MS / requests
        pg = None if before[1] is None else (after[1] - before[1]) * TICK_MS / requests
        return {"app_ms": round(app, 2), "postgres_ms": None if pg is None else round(pg, 2)}
