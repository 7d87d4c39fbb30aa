"""The files of Prometheus' multiprocess mode (PROMETHEUS_MULTIPROC_DIR), kept to a
number that does not grow with time.

Every process that counts something writes its own files there, named by host, PID
namespace and pid (`counter_web-1-4026531836-4242.db`), and /metrics adds up every
file it finds. A process's files stayed after it ended, as they must (its counts are
part of the totals), so every replaced gunicorn worker and every `manage.py` command
run in the app's container left one or two more: at 4,064 files a scrape took 230 to
350 ms. Here a process's counts are folded into one archive file per kind
(`counter_archive.db`, `histogram_archive.db`) when it ends, and its files removed: by
itself at exit (atexit), or, for a gunicorn worker that was killed, by the master
(gunicorn.conf.py's child_exit, which folds every ended process of its host and PID
namespace); gunicorn and the webhook worker also fold those when they start (killed
with the master). Only there can a process be known to have ended: containers of one
pod share a hostname, not their pids. The directory then holds a few files per live
process and the archives.

Folding takes an exclusive lock on the directory's lock file and a scrape a shared
one: a scrape sees a process's counts either in its files or in the archive, never
in both or neither (a counter that dips looks like a reset to Prometheus), and never
a file that is gone (the collector fails on one). A fold that waits holds back the
scrapes that come after it (GATE_FILE), and one that gives up (gunicorn's master
waits a second) leaves its files to the next worker's exit. A fold that cannot be
done (the archives are another user's: a `manage.py` command run as root made them)
is logged and its files stay, still counted: `tidy`, which gunicorn's hooks and a
process's exit call, never raises, since an exception there stops gunicorn's master.
A process killed between adding a file's counts to an archive and removing the file
(at its exit, a window of microseconds) has that file folded again: its counts twice."""

import contextlib
import fcntl
import glob
import logging
import os
import socket
import struct
import time
from collections.abc import Iterator

from prometheus_client.mmap_dict import MmapedDict

logger = logging.getLogger(__name__)

LOCK_FILE = ".fold.lock"
# Taken before LOCK_FILE, by a fold exclusive until it holds LOCK_FILE, by a scrape
# shared for as long as it takes LOCK_FILE: a fold waiting for the scrapes in progress
# keeps new ones out, so overlapping scrapes cannot keep it waiting for ever (flock
# lets a shared lock in ahead of a waiting exclusive one; three scrapers back to back
# kept five killed workers' files unfolded, helper 123).
GATE_FILE = ".fold.gate"
# The kinds whose counts add up across processes; other files (gauges: this app has
# none in files) are left as they are.
SUMMED = ("counter", "histogram", "summary")


def process_name(pid: int | None = None) -> str:
    """The name in a process's files: its host, PID namespace and pid (containers
    sharing the directory, the app's and the worker's, may reuse each other's pids,
    and those of one pod share a hostname)."""
    return f"{_HOST_AND_PIDS}-{os.getpid() if pid is None else pid}"


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:  # no /proc (macOS): one namespace
        return "0"


_HOST_AND_PIDS = f"{socket.gethostname()}-{_pid_namespace()}"


@contextlib.contextmanager
def locked(directory: str, *, exclusive: bool, wait: float | None = None) -> Iterator[None]:
    """Hold the directory's lock: exclusive to fold, shared to read every file;
    TimeoutError after `wait` seconds (None: as long as it takes). Through the gate
    (GATE_FILE): a fold that waits holds back the scrapes that come after it. The
    files are opened read-only (flock needs no more), so another user's lock too."""
    deadline = None if wait is None else time.monotonic() + wait
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    gate = _open(directory, GATE_FILE)
    try:
        lock = _open(directory, LOCK_FILE)
        try:
            _flock(gate, mode, deadline, directory)
            try:
                _flock(lock, mode, deadline, directory)
            finally:
                fcntl.flock(gate, fcntl.LOCK_UN)
            yield
        finally:
            os.close(lock)  # releases the lock
    finally:
        os.close(gate)


def _open(directory: str, name: str) -> int:
    return os.open(os.path.join(directory, name), os.O_RDONLY | os.O_CREAT, 0o644)


def _flock(fd: int, mode: int, deadline: float | None, directory: str) -> None:
    if deadline is None:
        fcntl.flock(fd, mode)
        return
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{directory}'s metrics lock stayed taken") from None
            time.sleep(0.01)


def fold(directory: str, *names: str, wait: float | None = None) -> int:
    """Add the counts in the files of the processes named `names` to the archives and
    remove their files, under one lock; returns how many it removed. The processes
    must have ended. The files are listed under the lock: another process may have
    folded them meanwhile."""
    removed = 0
    with locked(directory, exclusive=True, wait=wait):
        for name in names:
            removed += _fold_files(directory, name)
    return removed


def _fold_files(directory: str, name: str) -> int:
    pattern = os.path.join(glob.escape(directory), f"*_{name}.db")
    files = [path for path in glob.glob(pattern)
             if os.path.basename(path).split("_")[0] in SUMMED]  # fmt: skip
    removed = 0
    for path in files:
        kind = os.path.basename(path).split("_")[0]
        try:
            counts = list(MmapedDict.read_all_values_from_file(path))
        except FileNotFoundError:
            continue
        except (struct.error, RuntimeError):  # empty (killed as it made it) or corrupt
            os.replace(path, f"{path}.unreadable")  # out of every scrape and fold
            logger.warning("Metrics file %s cannot be read: moved aside.", path)
            continue
        archive = MmapedDict(os.path.join(directory, f"{kind}_archive.db"))
        try:
            for key, value, timestamp, _ in counts:
                archived, _ = archive.read_value(key)
                archive.write_value(key, archived + value, timestamp)
        finally:
            archive.close()
        os.remove(path)
        removed += 1
    return removed


def fold_ended(directory: str, *, wait: float | None = None) -> int:
    """Fold the files of every process of this host and PID namespace that has ended;
    returns how many files it removed."""
    pattern = os.path.join(glob.escape(directory), f"*_{glob.escape(_HOST_AND_PIDS)}-*.db")
    pids = {os.path.basename(path).removesuffix(".db").rpartition("-")[2]
            for path in glob.glob(pattern)}  # fmt: skip
    ended = [process_name(int(pid)) for pid in pids if pid.isdigit() and not _running(int(pid))]
    return fold(directory, *ended, wait=wait) if ended else 0


def tidy(name: str | None = None, *, wait: float = 5) -> None:
    """In PROMETHEUS_MULTIPROC_DIR, fold the files of the process named `name` (it has
    ended, or is ending), or with None of every process of this host and PID namespace
    that has ended, waiting at most `wait` seconds for the lock; log a failure instead
    of raising it."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    try:
        if name is None:
            fold_ended(directory, wait=wait)
        else:
            fold(directory, name, wait=wait)
    except Exception:
        logger.warning("Metrics files in %s not folded; they stay, still counted.", directory,
                       exc_info=True)  # fmt: skip


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True
