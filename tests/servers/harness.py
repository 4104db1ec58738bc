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
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.processes import READY_TIMEOUT, RecordedProcess

APP = "tests.servers.asgi:application"
DOCS_APP = "myproject.asgi:application"
RESOURCES = ("config", "pool", "cache")
"""The container's resources, in the order they start."""
GRACEFUL_TIMEOUT = "30"
"""The graceful timeouts the Deploying page recommends, in seconds."""


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
class Server(RecordedProcess):
    """One server process serving ``tests.servers.asgi:application``."""

    spec: Spec
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    base_url: str = ""

    def __post_init__(self) -> None:
        self.label = self.spec.id
        self._reserved: socket.socket | None = None

    def start(self) -> Server:
        # The child gets its own copy of the listening socket; the parent closes
        # its one at once (except a reserving socket, see above).
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, self.spec.reuse, 1)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            self.base_url = f"http://127.0.0.1:{port}"
            fd = None
            if self.spec.bind == "fd":
                sock.listen()
                fd = sock.fileno()
            self.spawn(
                self.spec.command(fd, port, self.extra),
                {"DJANGO_SETTINGS_MODULE": "tests.servers.settings", **self.env},
                pass_fds=[] if fd is None else [fd],
            )
            if self.spec.bind == "port":
                self._reserved = sock.dup()
        return self

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

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def stop(self) -> None:
        try:
            super().stop()
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
