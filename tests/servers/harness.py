"""Start an ASGI server as a subprocess on 127.0.0.1, read what it did, stop it.

Every server gets its listening socket without a port race. uvicorn, gunicorn,
hypercorn and daphne take an inherited file descriptor (``--fd N`` /
``--bind fd://N``), bound here to port 0. granian and Django's runserver can only bind
an address, so the port is *reserved* instead: a socket bound here to port 0, never
listening, stays open until the server has stopped. The kernel hands that port to
nobody else meanwhile, and the server can still bind it because it sets the same
reuse option (granian ``SO_REUSEPORT``, runserver ``SO_REUSEADDR``) and the reserving
socket does not listen, so it never receives a connection.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = "tests.servers.asgi:application"
DOCS_APP = "myproject.asgi:application"
RESOURCES = ("config", "pool", "cache")
"""The container's resources, in the order they start."""
# Bounds on waits, not on what the tests prove: with CI's two suites side by side on
# 2 cores, under coverage and dev mode, uvicorn --workers 2 took 21 s to get ready.
READY_TIMEOUT = 60.0
EXIT_TIMEOUT = 60.0
GRACEFUL_TIMEOUT = "30"
"""The graceful timeouts the Deploying page recommends, in seconds."""

TEST_ENV_PREFIX = "LIFESPAN_DI_TEST_"


@dataclass(frozen=True)
class Spec:
    """How to run one server: its command line, as documented, and its bind options.

    ``recommended`` is what docs/deploying.md shows after ``<program> <app>``;
    tests/servers/test_deploying_page.py keeps the two identical.
    """

    id: str
    program: str
    module: str
    recommended: tuple[str, ...]
    bind: str  # "fd": pass the socket; "port": reserve a port (see module docstring)
    workers: int = 1
    # Options the tests add and the page does not recommend.
    test_options: tuple[str, ...] = ()
    reuse: int = socket.SO_REUSEADDR
    lifespan: bool = True

    def __str__(self) -> str:
        return self.id

    def command(self, fd: int | None, port: int, extra: tuple[str, ...]) -> list[str]:
        if self.program == "runserver":
            # manage.py runserver: the address is positional.
            return [
                sys.executable,
                "-m",
                "django",
                "runserver",
                *self.recommended,
                *self.test_options,
                *extra,
                f"127.0.0.1:{port}",
            ]
        bind: list[str]
        if self.program in ("uvicorn", "daphne"):
            bind = ["--fd", str(fd)]
        elif self.program in ("gunicorn", "hypercorn"):
            bind = ["--bind", f"fd://{fd}"]
        else:
            bind = ["--host", "127.0.0.1", "--port", str(port)]
        return [
            sys.executable,
            "-m",
            self.module,
            APP,
            *self.recommended,
            *bind,
            *self.test_options,
            *extra,
        ]

    def documented(self) -> str:
        """The command line docs/deploying.md must show for this server."""
        return " ".join([self.program, DOCS_APP, *self.recommended])


UVICORN = Spec(
    "uvicorn",
    "uvicorn",
    "uvicorn",
    ("--lifespan", "on", "--timeout-graceful-shutdown", GRACEFUL_TIMEOUT),
    "fd",
    test_options=("--no-access-log",),
)
UVICORN_WORKERS = Spec(
    "uvicorn-workers",
    "uvicorn",
    "uvicorn",
    (
        "--lifespan",
        "on",
        "--timeout-graceful-shutdown",
        GRACEFUL_TIMEOUT,
        "--workers",
        "2",
    ),
    "fd",
    workers=2,
    test_options=("--no-access-log",),
)
GUNICORN_UVICORN = Spec(
    "gunicorn-uvicorn",
    "gunicorn",
    "gunicorn",
    (
        "-k",
        "uvicorn_worker.UvicornWorker",
        "-w",
        "2",
        "--graceful-timeout",
        GRACEFUL_TIMEOUT,
    ),
    "fd",
    workers=2,
    # gunicorn 27 opens a control socket under ~/.gunicorn/ at every start
    # (docs/how-it-works.md, "What lifespan_di relies on").
    test_options=("--no-control-socket",),
)
GUNICORN_ASGI = Spec(
    "gunicorn-asgi",
    "gunicorn",
    "gunicorn",
    ("-k", "asgi", "--asgi-lifespan", "on", "--graceful-timeout", GRACEFUL_TIMEOUT),
    "fd",
    test_options=("--no-control-socket",),
)
HYPERCORN = Spec(
    "hypercorn",
    "hypercorn",
    "hypercorn",
    ("--graceful-timeout", GRACEFUL_TIMEOUT),
    "fd",
)
GRANIAN = Spec(
    "granian",
    "granian",
    "granian",
    ("--interface", "asgi"),
    "port",
    test_options=("--no-access-log",),
    reuse=socket.SO_REUSEPORT,
)
DAPHNE = Spec("daphne", "daphne", "daphne", (), "fd", lifespan=False)
RUNSERVER = Spec(
    "runserver",
    "runserver",
    "django",
    ("--nolifespan", "--noreload"),
    "port",
    lifespan=False,
)

LIFESPAN_SERVERS = (
    UVICORN,
    UVICORN_WORKERS,
    GUNICORN_UVICORN,
    GUNICORN_ASGI,
    HYPERCORN,
    GRANIAN,
)


@dataclass
class Event:
    pid: int
    name: str


@dataclass
class Server:
    """One server process serving ``tests.servers.asgi:application``."""

    spec: Spec
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    base_url: str = ""

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.record_path = self.workdir / "record"
        self.log_path = self.workdir / "log"
        self._reserved: socket.socket | None = None

    def start(self) -> Server:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(TEST_ENV_PREFIX)
        }
        env.update(
            DJANGO_SETTINGS_MODULE="tests.servers.settings",
            PYTHONPATH=str(REPO_ROOT),
            PYTHONUNBUFFERED="1",
            LIFESPAN_DI_TEST_RECORD=str(self.record_path),
            **self.env,
        )
        # The child gets its own copies of the log file and of the listening socket;
        # the parent closes its ones at once (except a reserving socket, see above).
        with (
            self.log_path.open("wb") as log,
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        ):
            sock.setsockopt(socket.SOL_SOCKET, self.spec.reuse, 1)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            self.base_url = f"http://127.0.0.1:{port}"
            fd = None
            if self.spec.bind == "fd":
                sock.listen()
                fd = sock.fileno()
            command = self.spec.command(fd, port, self.extra)
            self.proc = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=[] if fd is None else [fd],
                # Its own process group, so that stop() can reach every worker.
                start_new_session=True,
            )
            if self.spec.bind == "port":
                self._reserved = sock.dup()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_ready(self, path: str = "/ready/", timeout: float = READY_TIMEOUT) -> None:
        """Poll ``path`` until it answers 200; fail if the process exits or time is up."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    msg = f"{self.spec.id} exited with {self.proc.returncode} before serving:\n{self.log()}"
                    raise AssertionError(msg)
                with contextlib.suppress(httpx.TransportError):
                    if client.get(path).status_code == 200:
                        return
                time.sleep(0.05)
        msg = f"{self.spec.id} did not serve within {timeout} s:\n{self.log()}"
        raise AssertionError(msg)

    def wait_started(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until every worker has started every resource (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = Counter(
                event.name for event in self.events() if event.name.startswith("start:")
            )
            if all(started[f"start:{n}"] >= self.spec.workers for n in RESOURCES):
                return
            time.sleep(0.05)
        msg = f"{self.spec.id}: workers did not all start within {timeout} s:\n{self.log()}"
        raise AssertionError(msg)

    def wait_for_event(self, name: str, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(event.name == name for event in self.events()):
                return
            time.sleep(0.02)
        msg = f"{self.spec.id}: no {name!r} within {timeout} s:\n{self.log()}"
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
        msg = (
            f"{self.spec.id}: not {count} {prefix!r} within {timeout} s:\n{self.log()}"
        )
        raise AssertionError(msg)

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the process started (the master of a multi-worker server)."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            msg = f"{self.spec.id} did not exit within {timeout} s:\n{self.log()}"
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
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def group_members(self) -> list[int]:
        """PIDs of the live (not zombie) processes left in the server's process group."""
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
        """Wait until no process of the server's group is left (bounded)."""
        deadline = time.monotonic() + timeout
        while self.group_members():
            if time.monotonic() > deadline:
                msg = f"{self.spec.id}: processes {self.group_members()} still run"
                raise AssertionError(msg)
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the process group: SIGTERM to the process, then SIGKILL to the group."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=EXIT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=EXIT_TIMEOUT)
            if self.proc is not None:
                # Workers orphaned by a master that died first are still in the group.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
        finally:
            if self._reserved is not None:
                self._reserved.close()
                self._reserved = None


def assert_each_started_resource_stopped_once(server: Server) -> None:
    """Every resource that started in a process had exactly one teardown there."""
    for pid, names in server.by_pid().items():
        events = Counter(names)
        for name in RESOURCES:
            assert events[f"start:{name}"] == events[f"stop:{name}"] <= 1, (
                pid,
                names,
                server.log(),
            )
