"""A subprocess the end-to-end tests start, read and stop: servers, Celery workers.

Each process runs in its own process group and appends ``<pid> <event>`` lines to a
record file (``LIFESPAN_DI_TEST_RECORD``, written by tests/servers/containers.py); its
output goes to a log file that failing assertions quote.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EXIT_TIMEOUT",
    "READY_TIMEOUT",
    "REPO_ROOT",
    "Event",
    "RecordedProcess",
    "redis_server",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
# Bounds on waits, not on what the tests prove: with CI's two suites side by side on
# 2 cores, under coverage and dev mode, uvicorn --workers 2 took 21 s to get ready.
READY_TIMEOUT = 60.0
EXIT_TIMEOUT = 60.0

TEST_ENV_PREFIX = "LIFESPAN_DI_TEST_"


@dataclass
class Event:
    pid: int
    name: str


class RecordedProcess:
    """What every test subprocess shares; subclasses set the attributes below."""

    label: str
    """Names the process in failure messages."""
    workdir: Path
    proc: subprocess.Popen[bytes] | None

    @property
    def record_path(self) -> Path:
        return self.workdir / "record"

    @property
    def log_path(self) -> Path:
        return self.workdir / "log"

    def spawn(
        self, command: Sequence[str], env: dict[str, str], pass_fds: Sequence[int] = ()
    ) -> None:
        """Start ``command`` in the repository, with the record file and ``env``.

        The test process's own ``LIFESPAN_DI_TEST_*`` variables are not passed on:
        each process gets only the faults its test asks for.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        full_env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(TEST_ENV_PREFIX)
        }
        full_env.update(
            PYTHONPATH=str(REPO_ROOT),
            PYTHONUNBUFFERED="1",
            LIFESPAN_DI_TEST_RECORD=str(self.record_path),
            **env,
        )
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=pass_fds,
                # Its own process group, so that stop() can reach every child.
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_for_event(self, name: str, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(event.name == name for event in self.events()):
                return
            time.sleep(0.02)
        msg = f"{self.label}: no {name!r} within {timeout} s:\n{self.log()}"
        raise AssertionError(msg)

    def wait_for_events(
        self, prefix: str, count: int, timeout: float = READY_TIMEOUT
    ) -> None:
        """Wait until ``count`` events starting with ``prefix`` were recorded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(name.startswith(prefix) for name in self.names()) >= count:
                return
            time.sleep(0.02)
        msg = f"{self.label}: not {count} {prefix!r} within {timeout} s:\n{self.log()}"
        raise AssertionError(msg)

    def fail_if_exited(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            msg = f"{self.label} exited with {self.proc.returncode}:\n{self.log()}"
            raise AssertionError(msg)

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the process started (the master of a multi-process server)."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            msg = f"{self.label} did not exit within {timeout} s:\n{self.log()}"
            raise AssertionError(msg) from None

    def events(self) -> list[Event]:
        if not self.record_path.exists():
            return []
        events = []
        for line in self.record_path.read_text(encoding="utf-8").splitlines():
            pid, _, name = line.partition(" ")
            events.append(Event(int(pid), name))
        return events

    def names(self) -> list[str]:
        return [event.name for event in self.events()]

    def by_pid(self) -> dict[int, list[str]]:
        grouped: dict[int, list[str]] = {}
        for event in self.events():
            grouped.setdefault(event.pid, []).append(event.name)
        return grouped

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def group_members(self) -> list[int]:
        """PIDs of the live (not zombie) processes left in the process group."""
        members = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:  # the process ended meanwhile
                continue
            # pid (comm) state ppid pgrp ...: comm may contain spaces and parentheses.
            state, _ppid, pgrp = text.rpartition(")")[2].split()[:3]
            if int(pgrp) == self.pid and state != "Z":
                members.append(int(stat.parent.name))
        return members

    def wait_group_gone(self, timeout: float = EXIT_TIMEOUT) -> None:
        """Wait until no process of the group is left (bounded)."""
        deadline = time.monotonic() + timeout
        while self.group_members():
            if time.monotonic() > deadline:
                msg = f"{self.label}: processes {self.group_members()} still run"
                raise AssertionError(msg)
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the process group: SIGTERM to the process, then SIGKILL to the group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=EXIT_TIMEOUT)
        # Children orphaned by a master that died first are still in the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def redis_server() -> Iterator[Path]:
    """A Redis server of the caller's own, on a Unix socket (no port to race for).

    Yields the socket's path; the server is stopped by its PID afterwards.
    """
    # A short directory: a Unix socket's path is limited to 107 bytes.
    directory = Path(tempfile.mkdtemp(prefix="lifespan-di-redis-"))
    socket_path = directory / "redis.sock"
    server = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not socket_path.exists():
            assert server.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        yield socket_path
    finally:
        server.terminate()
        try:
            server.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=EXIT_TIMEOUT)
        shutil.rmtree(directory, ignore_errors=True)
