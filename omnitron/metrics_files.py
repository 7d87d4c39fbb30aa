"""The files of Prometheus' multiprocess mode (PROMETHEUS_MULTIPROC_DIR), kept to a
number that does not grow with time.

Every process that counts something writes its own files there, named by host and
pid (`counter_web-1-4242.db`), and /metrics adds up every file it finds. A process's
files stayed after it ended, as they must (its counts are part of the totals), so
every replaced gunicorn worker and every `manage.py` command run in the app's
container left one or two more: at 4,064 files a scrape took 230 to 350 ms. Here a
process's counts are folded into one archive file per kind (`counter_archive.db`)
when it ends, and its files removed: by itself at exit (atexit), or, for a gunicorn
worker that was killed, by the master (gunicorn.conf.py's child_exit); the master
also folds in, when it starts, those of its host's processes that ended without
either (killed with the master). The directory then holds a few files per live
process and three archives.

Folding takes an exclusive lock on the directory's lock file and a scrape a shared
one: a scrape sees a process's counts either in its files or in the archive, never
in both or neither (a counter that dips looks like a reset to Prometheus), and never
a file that is gone (the collector fails on one)."""

import contextlib
import fcntl
import glob
import os
import socket
from collections.abc import Iterator

from prometheus_client.mmap_dict import MmapedDict

LOCK_FILE = ".fold.lock"
# The kinds whose counts add up across processes; other files (gauges: this app has
# none in files) are left as they are.
SUMMED = ("counter", "histogram", "summary")


def process_name(pid: int | None = None) -> str:
    """The name in a process's files: its host and pid (containers sharing the
    directory, the app's and the worker's, may reuse each other's pids)."""
    return f"{socket.gethostname()}-{os.getpid() if pid is None else pid}"


@contextlib.contextmanager
def locked(directory: str, *, exclusive: bool) -> Iterator[None]:
    """Hold the directory's lock: exclusive to fold, shared to read every file."""
    with open(os.path.join(directory, LOCK_FILE), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield  # closing the file releases it


def fold(directory: str, name: str) -> int:
    """Add the counts in the files of the process named `name` to the archives and
    remove its files; returns how many it removed. The process must have ended."""
    files = [path for path in glob.glob(os.path.join(glob.escape(directory), f"*_{name}.db"))
             if os.path.basename(path).split("_")[0] in SUMMED]  # fmt: skip
    if not files:
        return 0
    with locked(directory, exclusive=True):
        for path in files:
            kind = os.path.basename(path).split("_")[0]
            archive = MmapedDict(os.path.join(directory, f"{kind}_archive.db"))
            try:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(path):
                    archived, _ = archive.read_value(key)
                    archive.write_value(key, archived + value, timestamp)
            finally:
                archive.close()
            os.remove(path)
    return len(files)


def fold_ended(directory: str) -> int:
    """Fold the files of every process of this host that has ended; returns how many
    files it removed."""
    host = socket.gethostname()
    removed = 0
    for path in glob.glob(os.path.join(glob.escape(directory), f"*_{glob.escape(host)}-*.db")):
        pid = os.path.basename(path).removesuffix(".db").rpartition("-")[2]
        if pid.isdigit() and not _running(int(pid)):
            removed += fold(directory, process_name(int(pid)))
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True
