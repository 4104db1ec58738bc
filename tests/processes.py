"""A subprocess the end-to-end tests start, read and stop: servers, Celery workers.

Each process runs in its own process group and appends ``<pid> <event>`` lines to a
record file (``LIFESPAN_DI_TEST_RECORD``, written by tests/servers/containers.py); its
output goes to a log file that failing assertions quote.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "EXIT_TIMEOUT",
    "READY_TIMEOUT",
    "REPO_ROOT",
    "Event",
    "Postgres",
    "RecordedProcess",
    "backend_pids",
    "postgres_server",
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


POSTGRES_PREFIX = Path("/usr/lib/postgresql")
POSTGRES_PROGRAMS = ("initdb", "postgres", "pg_isready", "psql")


@dataclass(frozen=True)
class Postgres:
    """A running throwaway PostgreSQL server: where and as whom to connect."""

    socket_dir: Path
    """The directory of the Unix socket (``host`` for libpq, ``HOST`` for Django)."""
    port: int
    """Names the socket file, ``.s.PGSQL.<port>``: no TCP port is opened."""
    user: str
    """The role the tests connect as: may log in and create databases, no more."""
    database: str
    """A database owned by ``user``."""
    superuser: str
    pid: int
    """The postmaster's PID."""
    directory: Path
    """The temporary directory holding the cluster and the socket."""

    def conninfo(self, database: str | None = None, user: str | None = None) -> str:
        """A libpq connection string, for psycopg.connect()."""
        return (
            f"host={self.socket_dir} port={self.port} "
            f"user={user or self.user} dbname={database or self.database}"
        )

    def django_settings(self) -> dict[str, Any]:
        """A ``DATABASES["default"]`` entry for Django's PostgreSQL backend."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": str(self.socket_dir),
            "PORT": str(self.port),
            "NAME": self.database,
            "USER": self.user,
            "PASSWORD": "",
        }


def postgres_bin_dir() -> Path:
    """The server binaries of Debian's ``postgresql`` package: its highest major."""
    candidates = [
        bin_dir
        for bin_dir in POSTGRES_PREFIX.glob("*/bin")
        if bin_dir.parent.name.isdigit()
        and all((bin_dir / name).exists() for name in POSTGRES_PROGRAMS)
    ]
    if not candidates:
        msg = (
            f"No PostgreSQL server under {POSTGRES_PREFIX}/<major>/bin: "
            "the PostgreSQL tests need Debian's package (apt-get install postgresql)."
        )
        raise RuntimeError(msg)
    return max(candidates, key=lambda bin_dir: int(bin_dir.parent.name))


def _server_account() -> tuple[int, int] | None:
    """The (uid, gid) to run the server as, or None to run it as ourselves.

    PostgreSQL refuses to run as root: as root, run it as the ``postgres`` user
    Debian's package creates, or else as ``nobody``.
    """
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("Running as root, and neither a postgres nor a nobody user.")


@contextlib.contextmanager
def postgres_server(
    user: str = "lifespan_di", database: str = "lifespan_di", port: int = 5432
) -> Iterator[Postgres]:
    """A PostgreSQL server of the caller's own, on a Unix socket (no TCP port).

    A fresh cluster in a temporary directory (trust authentication, fsync off,
    200 connections), with a ``user`` role owning ``database``; the server is
    stopped by its PID afterwards and the directory removed. As root, the server
    runs as the ``postgres`` (or ``nobody``) user, which must be able to reach the
    temporary directory: pytest's ``tmp_path`` (mode 0700) would not do.
    """
    bin_dir = postgres_bin_dir()
    account = _server_account()
    # A short directory: a Unix socket's path is limited to 107 bytes.
    directory = Path(tempfile.mkdtemp(prefix="lifespan-di-pg-"))
    data_dir = directory / "data"
    log_path = directory / "log"
    superuser = "postgres"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(HOME=str(directory), LC_ALL="C")
    as_server: dict[str, Any] = {"cwd": directory, "env": env}
    if account is not None:
        uid, gid = account
        os.chown(directory, uid, gid)
        as_server.update(user=uid, group=gid, extra_groups=[])

    def log() -> str:
        return log_path.read_text(encoding="utf-8", errors="replace")

    server: subprocess.Popen[bytes] | None = None
    try:
        with log_path.open("wb") as log_file:
            initdb = subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "--pgdata", str(data_dir),
                    "--username", superuser,
                    "--auth", "trust",
                    "--encoding", "UTF8",
                    "--locale", "C",
                    "--no-sync",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=READY_TIMEOUT,
                check=False,
                **as_server,
            )  # fmt: skip
            assert initdb.returncode == 0, f"initdb failed:\n{log()}"
            server = subprocess.Popen(
                [
                    str(bin_dir / "postgres"),
                    "-D", str(data_dir),
                    "-k", str(directory),
                    "-p", str(port),
                    "-F",
                    "-c", "listen_addresses=",
                    "-c", "max_connections=200",
                    "-c", "shared_buffers=16MB",
                    "-c", "full_page_writes=off",
                    "-c", "synchronous_commit=off",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Its own process group: a Ctrl-C in the terminal is not a shutdown.
                start_new_session=True,
                **as_server,
            )  # fmt: skip
        ready = [
            str(bin_dir / "pg_isready"),
            "--quiet",
            "--host", str(directory),
            "--port", str(port),
            "--username", superuser,
            "--dbname", "postgres",
        ]  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT
        while subprocess.run(ready, env=env, check=False).returncode != 0:
            assert server.poll() is None, f"postgres exited:\n{log()}"
            assert time.monotonic() < deadline, f"postgres did not start:\n{log()}"
            time.sleep(0.02)
        setup = subprocess.run(
            [
                str(bin_dir / "psql"),
                "--no-psqlrc",
                "--quiet",
                "--host", str(directory),
                "--port", str(port),
                "--username", superuser,
                "--dbname", "postgres",
                "--set", "ON_ERROR_STOP=1",
                "--command", f'CREATE ROLE "{user}" LOGIN CREATEDB',
                "--command", f'CREATE DATABASE "{database}" OWNER "{user}"',
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=READY_TIMEOUT,
            check=False,
        )  # fmt: skip
        assert setup.returncode == 0, f"psql failed: {setup.stderr.decode()}"
        yield Postgres(
            socket_dir=directory,
            port=port,
            user=user,
            database=database,
            superuser=superuser,
            pid=server.pid,
            directory=directory,
        )
    finally:
        if server is not None:
            # SIGINT is PostgreSQL's fast shutdown: sessions are ended, not awaited.
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=EXIT_TIMEOUT)
            # Backends orphaned by a postmaster killed first are still in the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)


def backend_pids(pg: Postgres, database: str | None = None) -> set[int]:
    """The PIDs of the client backends connected to ``database`` (default: pg's).

    Queried from ``pg_stat_activity`` as the superuser, over a connection of its
    own that is left out. A backend whose client disconnected lingers for a moment.
    """
    import psycopg  # the test extra's driver: imported here, for these tests only

    with psycopg.connect(
        pg.conninfo(database="postgres", user=pg.superuser), autocommit=True
    ) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = %s AND backend_type = 'client backend'"
            " AND pid <> pg_backend_pid()",
            (database or pg.database,),
        ).fetchall()
    return {pid for (pid,) in rows}
