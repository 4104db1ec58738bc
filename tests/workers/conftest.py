"""Fixtures of the Celery tests: a real Redis server, real workers, stopped by PID."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery import Celery

from tests.processes import EXIT_TIMEOUT, READY_TIMEOUT, RecordedProcess, redis_server

RESOURCES = ("config", "pool", "cache", "redis")
"""The workers' app resources (tests/workers/containers.py)."""
TASK_TIMEOUT = 60.0


@dataclass
class Worker(RecordedProcess):
    """A ``celery worker`` of tests.workers.app, in its own process group."""

    workdir: Path
    redis: Path
    options: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.label = "celery worker " + " ".join(self.options)

    def start(self) -> Worker:
        command = [
            sys.executable,
            "-m",
            "celery",
            "--app=tests.workers.app",
            "worker",
            "--loglevel=INFO",
            # No other workers to talk to: start and stop faster.
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            *self.options,
        ]
        env = {"DJANGO_SETTINGS_MODULE": "tests.workers.settings", **self.env}
        self.spawn(command, {"LIFESPAN_DI_TEST_REDIS": str(self.redis), **env})
        return self

    def wait_started(self, processes: int, timeout: float = READY_TIMEOUT) -> None:
        """Wait until ``processes`` processes have started every resource (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = Counter(n for n in self.names() if n.startswith("start:"))
            if all(started[f"start:{name}"] >= processes for name in RESOURCES):
                return
            self.fail_if_exited()
            time.sleep(0.05)
        msg = f"{self.label}: not started within {timeout} s:\n{self.log()}"
        raise AssertionError(msg)

    def resource_events(self) -> dict[int, list[str]]:
        """Each process's start and stop events, by PID."""
        return {
            pid: [name for name in names if name.startswith(("start:", "stop:"))]
            for pid, names in self.by_pid().items()
            if any(name.startswith(("start:", "stop:")) for name in names)
        }

    def shut_down(self) -> int:
        """Warm shutdown (SIGTERM); return the exit status once the group is gone."""
        self.send_signal(signal.SIGTERM)
        status = self.wait_exit(EXIT_TIMEOUT)
        self.wait_group_gone()
        return status


StartWorker = Callable[..., Worker]


@pytest.fixture
def redis() -> Iterator[Path]:
    """A Redis server of this test's own, on a Unix socket: its path."""
    with redis_server() as socket_path:
        yield socket_path


@pytest.fixture
def broker(redis: Path) -> Iterator[Celery]:
    """A Celery client of the test's Redis: sends tasks by name, reads their results."""
    url = f"redis+socket://{redis}"
    client = Celery(
        "tests.workers.client", broker=url, backend=url, set_as_current=False
    )
    yield client
    client.close()


@pytest.fixture
def start_worker(tmp_path: Path, redis: Path) -> Iterator[StartWorker]:
    """Start workers on demand; each is stopped (its whole process group) at teardown."""
    workers: list[Worker] = []

    def start(*options: str, **env: str) -> Worker:
        worker = Worker(tmp_path / f"worker-{len(workers)}", redis, options, env)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()
