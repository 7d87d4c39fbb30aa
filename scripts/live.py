"""Real processes on loopback HTTP, for the tests and the benchmark alike: a free
port, a wait for an answering URL, and a process group whose output is kept.
Nothing here needs Django."""

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(url: str, timeout: float = 30, process=None, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before {url} answered")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == status:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {status} within {timeout}s")


class Process:
    """A process group started in its own session, its output kept in a file (a pipe
    nobody reads would block a busy server)."""

    def __init__(self, args: list[str], env: dict, cwd: Path = ROOT):
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the process
        self.popen = subprocess.Popen(
            args, cwd=cwd, env=env, start_new_session=True,
            stdout=self.log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def send(self, sig) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> str:
        """Signal the group, wait for the exit, and return everything it printed."""
        if self.popen.poll() is None:
            self.send(sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            self.popen.wait()
        return self.output()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()
