"""gunicorn settings, read by `make run` and the Docker image (gunicorn loads this
file from the working directory). HOST, PORT, WEB_CONCURRENCY, GUNICORN_TIMEOUT and
PROMETHEUS_MULTIPROC_DIR override (docs/configuration.md)."""

import atexit
import os
import shutil
import sys
import tempfile

from omnitron import env


def env_number(name: str, default: int, **limits) -> int:
    """Checked as the app's settings are (WEB_CONCURRENCY=0 started a master with no
    worker, whose port took connections and never answered; GUNICORN_TIMEOUT=0 is no
    timeout); a refusal is one line naming the variable, not a traceback."""
    try:
        return env.env_number(name, default, **limits)
    except ValueError as exc:
        sys.exit(f"gunicorn: {exc}")


port = env_number("PORT", 8000, minimum=1, maximum=65535)
host = env.env_text("HOST", "127.0.0.1")
# An IPv6 address takes brackets before its port: `::1:8000` is no address gunicorn reads.
bind = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
# The CPUs this process may run on (a container's cpuset), not every CPU of the host;
# macOS has no sched_getaffinity.
cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
workers = env_number("WEB_CONCURRENCY", cpus * 2 + 1, minimum=1, maximum=1024)
# A stuck worker is killed after this long. A capture or a page never needs it: the
# database's timeouts (DB_STATEMENT_TIMEOUT_MS, 15 s) answer first. A CSV export of a
# whole date range can (docs/api.md): narrow the range, or raise both, and the proxy's
# proxy_read_timeout (35 s, deploy/nginx/omnitron.conf.template) with them.
timeout = env_number("GUNICORN_TIMEOUT", 30, minimum=1, maximum=86400)
graceful_timeout = 20
keepalive = 5
# gunicorn's largest request line (long filter query strings); headers keep 8190 bytes.
limit_request_line = 8190
# Import Django and the app once, before forking: workers start warm (no 300 ms first
# request each) and share the imported code's memory. No database connection is open
# at that point, so none is shared.
preload_app = True
# Access lines come from the app's own JSON request log.
accesslog = None
# gunicorn's own lines (starting, workers, signals) are JSON too, as the app's.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "omnitron.logformat.JSONFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                             "stream": "ext://sys.stderr"}},
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False}},
}  # fmt: skip
# No control socket (gunicorn 25+'s `gunicornc`): its default path is one per OS user,
# so every gunicorn of that user (make run, the tests' servers, the benchmark's) took it
# over from the one before, and stopping any of them deleted the others'.
control_socket_disable = True
# No front end of ours sets SCRIPT_NAME or PATH_INFO, so none is taken from a request.
# gunicorn's default takes them from any peer on loopback, such as the proxy: a
# client's `SCRIPT_NAME: /x` that reached gunicorn (nginx passing names with `_`) made
# /x/metrics the metrics, served to anyone, and another value a 500.
forwarder_headers = ""

# Prometheus multiprocess mode (omnitron/metrics.py): every worker writes its samples to
# this directory and /metrics adds them up. It must be set before the app is loaded.
# Given (make run, Docker: shared with the webhook worker), or one of gunicorn's own.
if not env.env_text("PROMETHEUS_MULTIPROC_DIR"):  # unset or empty
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="omnitron-metrics-")
    _master = os.getpid()

    @atexit.register
    def _remove_own_metrics_dir():
        # When the master ends however it ends but killed (on_exit is not called when
        # the app fails to load, nor for --check-config); not when a worker does.
        if os.getpid() == _master:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def on_starting(server):
    """Errors gunicorn answers itself are JSON too (workers inherit this). The metrics
    files of this host's processes that ended without folding them (killed with their
    master) are folded now (omnitron/metrics_files.py)."""
    from omnitron import metrics_files
    from omnitron.gunicorn_errors import install

    install()
    metrics_files.tidy()


def child_exit(server, worker):
    """A worker ended, maybe killed (its timeout, SIGKILL): its metrics files are folded
    into the directory's archives, or every replaced worker left its own; so are those
    of any process of this host and PID namespace that ended before and whose fold
    failed. This runs in the master's main loop: it waits a second at most for the
    lock, and a failure is logged, never raised (it would stop gunicorn)."""
    from omnitron import metrics_files

    metrics_files.tidy(wait=1)
