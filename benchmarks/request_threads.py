"""``LIFESPAN_DI["REQUEST_THREADS"]``: pooled request threads next to bare Django.

Run it from the repository root, *not* under taskset: the in-process part pins this
process to ``--server-cpu`` itself, and the HTTP parts pin each uvicorn to
``--server-cpu``, wrk (and the PostgreSQL server) to ``--client-cpu``::

    python benchmarks/request_threads.py                    # full run, ~7 minutes
    python benchmarks/request_threads.py --rounds 1 --scale 0.05 --duration 1 \\
        --requests 300                                      # smoke run, ~45 s
    python benchmarks/request_threads.py --check            # exit 1 on a FAIL
    python benchmarks/request_threads.py --only http        # one part (repeatable)

Needs wrk and a PostgreSQL server's binaries (``apt-get install -y wrk postgresql``;
the server itself is a throwaway cluster on a Unix socket, ``tests.processes``).

Three applications over one project (``_threads_project.py``, no middleware):

* **bare Django**: ``django.core.asgi.get_asgi_application()``;
* **lifespan_di, setting off**: ``LifespanASGIHandler``, no ``REQUEST_THREADS``;
* **lifespan_di, REQUEST_THREADS=8**: the same with the setting (``pooled``).

In process, also **lifespan_di @HEAD**: the committed ``lifespan_di/handler.py``
(``git show HEAD:...``, loaded as a module of its own), i.e. the handler before the
feature, when it differs from the working tree's.

Parts (``--only``):

1. ``in_process``: whole requests, ``await app(scope, receive, send)`` driven as a
   server drives it (``_common.serve``), async and sync view; one request at a time,
   and 64 concurrent (``asyncio.gather``). Variants alternate every chunk, in a
   rotating order, garbage collector off; "ratio" is the median over the rounds of
   (variant / the same round's bare Django). Targets: pooled ≤ 0.65x (async view),
   ≤ 0.70x (sync view), one request at a time.
2. ``http``: requests/s and p99 under uvicorn (1 worker, uvloop, httptools) loaded by
   ``wrk -t1 -c<connections> --latency`` from 127.0.0.1, as ``http_load.py`` does:
   every server starts first, every round loads each once in a rotating order.
   uvicorn binds a port reserved here (``_common.reserved_port``). Async and sync
   views, and ``/query/`` on PostgreSQL (pooled with ``CONN_MAX_AGE = 60``, bare
   Django with ``CONN_MAX_AGE = 0``), each with ``REQUEST_THREADS`` 8 and ``SIZED``
   (64, the peak of requests holding a thread at 32 connections): the sized pool
   carries the targets, ≥ 1.4x bare Django's requests/s (views) and ≥ 2x (query).
   With the setting off: no change (ratio within ``NO_CHANGE``). Each pool's report
   at shutdown (overflowed requests, peak) is printed under the table.
3. ``backends``: ``--requests`` requests of ``/query/`` at 32 concurrency (32 threads
   of ``http.client``, keep-alive), ``CONN_MAX_AGE = 60``: pooled, and bare Django.
   Each answer names the backend PID and the thread; ``pg_stat_activity`` is also
   sampled every 20 ms during the load. Then SIGTERM: backends left once the server
   exited. Target (pooled): backends of pooled threads ≤ 8, reused; all backends ≤ 8 +
   overflow requests; none left after SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter_ns
from types import ModuleType
from typing import Any

from _common import (
    Batch,
    LifespanDriver,
    Samples,
    environment,
    measure,
    pair,
    pin,
    reserved_port,
    run_wrk,
    serve,
    verdict,
)

BENCHMARKS = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS.parent
THREADS = 8
SIZED = 64
"""``REQUEST_THREADS`` sized as docs/configuration.md says: the peak of requests
holding a thread, about twice wrk's 32 keep-alive connections (a request still
closing its response holds its thread while its connection's next request starts)."""
IN_PROCESS_TARGETS = {"async": 0.65, "sync": 0.70}
HTTP_TARGET = 1.4
QUERY_TARGET = 2.0
NO_CHANGE = 0.05
"""Setting off: ``|ratio - 1|`` at most this counts as "no change"."""
CONCURRENT = 64
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
GONE_TIMEOUT = 10.0
BACKENDS_CONCURRENCY = 32


# --- 1. In process ----------------------------------------------------------------


def head_handler_module() -> ModuleType | None:
    """The committed ``lifespan_di/handler.py`` as a module, if it differs."""
    try:
        source = subprocess.run(
            ["git", "show", "HEAD:lifespan_di/handler.py"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    current = (REPO_ROOT / "lifespan_di" / "handler.py").read_text(encoding="utf-8")
    if source == current:
        return None
    directory = Path(tempfile.mkdtemp(prefix="lifespan-di-head-"))
    path = directory / "head_handler.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("lifespan_di_head_handler", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return module


def serial_batch(app: Any, path: str, state: dict[str, Any]) -> Batch:
    async def run(requests: int) -> float:
        start = perf_counter_ns()
        for _ in range(requests):
            await serve(app, path, state)
        return (perf_counter_ns() - start) / requests / 1000

    return run


def concurrent_batch(app: Any, path: str, state: dict[str, Any]) -> Batch:
    async def run(requests: int) -> float:
        groups = max(requests // CONCURRENT, 1)
        start = perf_counter_ns()
        for _ in range(groups):
            await asyncio.gather(*(serve(app, path, state) for _ in range(CONCURRENT)))
        return (perf_counter_ns() - start) / (groups * CONCURRENT) / 1000

    return run


def in_process_report(
    title: str, samples: Samples, kinds: list[str], names: list[str]
) -> dict[str, Any]:
    print()
    print(title)
    width = max(len(f"{name}, {kind} view") for name in names for kind in kinds)
    print(f"{'variant':<{width}}  {'median':>7}  {'min-max':>15}  {'added':>7}  ratio")
    print(f"{'':<{width}}  {'µs/req':>7}  {'µs/req':>15}  {'µs':>7}")
    data: dict[str, Any] = {}
    for kind in kinds:
        print("-" * (width + 46))
        base = samples[f"bare Django, {kind} view"]
        for name in names:
            label = f"{name}, {kind} view"
            result = pair(samples[label], None if name == "bare Django" else base)
            low, high = result.spread
            added = "" if result.added is None else f"{result.added:+.1f}"
            ratio = "baseline" if result.ratio is None else f"{result.ratio:.3f}x"
            print(
                f"{label:<{width}}  {result.median:>7.1f}  "
                f"{f'{low:.1f}-{high:.1f}':>15}  {added:>7}  {ratio}"
            )
            data[label] = {
                "median": result.median,
                "min": low,
                "max": high,
                "added": result.added,
                "ratio": result.ratio,
            }
    return data


async def in_process(rounds: int, scale: float) -> tuple[list[tuple[bool, str]], Any]:
    import _threads_project
    from django.test.utils import override_settings

    apps: dict[str, Any] = {
        "bare Django": _threads_project.bare_app(),
        "lifespan_di, setting off": _threads_project.lifespan_di_app(),
        f"lifespan_di, REQUEST_THREADS={THREADS}": _threads_project.lifespan_di_app(),
    }
    head = head_handler_module()
    if head is not None:
        apps["lifespan_di @HEAD"] = head.LifespanASGIHandler()
    pooled_name = f"lifespan_di, REQUEST_THREADS={THREADS}"
    pooled = apps[pooled_name]
    # One lifespan per process (the container's): started by the handler without
    # the setting; the others serve requests inside it, as in in_process.py.
    driver = LifespanDriver(apps["lifespan_di, setting off"])
    await driver.startup()
    state = driver.state
    try:
        # The pooled handler reads the setting on its first request.
        setting = _threads_project.lifespan_di_setting(THREADS)
        with override_settings(LIFESPAN_DI=setting):
            got = await serve(pooled, "/async/", state)
        threads = pooled.request_threads
        if got != (200, b"ok") or threads is None or threads.size != THREADS:
            msg = f"the pooled handler answered {got!r}, threads {threads!r}"
            raise RuntimeError(msg)
        for name, app in apps.items():
            for path in ("/async/", "/sync/"):
                got = await serve(app, path, {} if name == "bare Django" else state)
                if got != (200, b"ok"):
                    msg = f"{name} {path} answered {got!r}"
                    raise RuntimeError(msg)
        names = list(apps)
        kinds = ["async", "sync"]
        results: dict[str, Any] = {}
        serial_size = max(int(1_000 * scale), 20)
        concurrent_size = max(int(1_024 * scale) // CONCURRENT, 1) * CONCURRENT
        for mode, factory, size, chunk in [
            ("one at a time", serial_batch, serial_size, 10),
            (f"{CONCURRENT} concurrent", concurrent_batch, concurrent_size, 64),
        ]:
            batches = {
                f"{name}, {kind} view": factory(
                    app, f"/{kind}/", {} if name == "bare Django" else state
                )
                for name, app in apps.items()
                for kind in kinds
            }
            samples = await measure(
                batches, rounds, size, chunk, max(size // 10, chunk)
            )
            results[mode] = in_process_report(
                f"1. In process, whole requests, {mode} "
                f"({rounds} rounds x {size} requests)",
                samples,
                kinds,
                names,
            )
    finally:
        await driver.shutdown()
        if pooled.request_threads is not None:
            await pooled.request_threads.aclose()
    checks = []
    serial = results["one at a time"]
    for kind, target in IN_PROCESS_TARGETS.items():
        ratio = serial[f"{pooled_name}, {kind} view"]["ratio"]
        checks.append(
            (
                ratio <= target,
                f"in process, {kind} view: pooled {ratio:.3f}x bare Django "
                f"(target <= {target})",
            )
        )
        off = serial[f"lifespan_di, setting off, {kind} view"]["ratio"]
        checks.append(
            (
                abs(off - 1) <= NO_CHANGE,
                f"in process, {kind} view: setting off {off:.3f}x bare Django "
                f"(no change: within ±{NO_CHANGE:.0%})",
            )
        )
    return checks, results


# --- Servers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """One uvicorn configuration of ``_threads_project``."""

    name: str
    factory: str
    threads: int | None = None
    conn_max_age: int | None = None
    """None: no database."""

    @property
    def lifespan(self) -> str:
        return "off" if self.factory == "bare_app" else "on"


@dataclass
class Server:
    served: Served
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def pg_env(pg: Any) -> dict[str, str]:
    return {
        "BENCH_PG_HOST": str(pg.socket_dir),
        "BENCH_PG_PORT": str(pg.port),
        "BENCH_PG_NAME": pg.database,
        "BENCH_PG_USER": pg.user,
    }


@contextmanager
def uvicorn(served: Served, cpu: int, log: Path, pg: Any) -> Iterator[Server]:
    """Start ``served`` under uvicorn pinned to ``cpu``; stop it by PID on exit.

    uvicorn binds 127.0.0.1 on a port reserved here (``_common.reserved_port``, which
    says why not ``--fd``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env["BENCH_REQUEST_THREADS"] = "" if served.threads is None else str(served.threads)
    if served.conn_max_age is not None:
        env.update(pg_env(pg), BENCH_CONN_MAX_AGE=str(served.conn_max_age))
    with reserved_port() as port:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    f"_threads_project:{served.factory}",
                    "--factory",
                    "--app-dir",
                    str(BENCHMARKS),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                    "--loop",
                    "uvloop",
                    "--http",
                    "httptools",
                    "--no-access-log",
                    "--lifespan",
                    served.lifespan,
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=lambda: pin(cpu),  # the parent's other threads hold no lock
            )
        server = Server(served, process, port, log)
        try:
            yield server
        finally:
            stop(server)


def stop(server: Server) -> int | None:
    """SIGTERM by PID, bounded wait, then SIGKILL. Returns the exit code."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
    return process.returncode


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            msg = f"{server.served.name}: uvicorn exited:\n{server.log.read_text()}"
            raise RuntimeError(msg)
        try:
            status, body = get(server.port, path, timeout=2)
        except OSError:
            time.sleep(0.1)
            continue
        if status != 200:
            msg = f"{server.served.name}: {path} answered {status} {body!r}"
            raise RuntimeError(msg)
        return
    msg = f"{server.served.name}: uvicorn did not serve within {READY_TIMEOUT} s"
    raise RuntimeError(msg)


@contextmanager
def postgres(cpu: int) -> Iterator[Any]:
    """A throwaway PostgreSQL server (tests.processes), its backends on ``cpu``."""
    sys.path.insert(0, str(REPO_ROOT))
    import psycopg

    from tests.processes import postgres_server

    with postgres_server() as pg:
        # Backends fork from the postmaster and inherit its CPU set.
        os.sched_setaffinity(pg.pid, {cpu})
        # Logs "unexpected EOF on client connection" (DEBUG1) for each connection
        # dropped without being closed: how part 3 tells a close from an exit.
        with psycopg.connect(
            pg.conninfo(database="postgres", user=pg.superuser), autocommit=True
        ) as conn:
            conn.execute("ALTER SYSTEM SET log_min_messages = 'debug1'")
            conn.execute("SELECT pg_reload_conf()")
        yield pg


DROPPED = "unexpected EOF on client connection"


def dropped_connections(pg: Any) -> int:
    """How many client connections the server's log says were dropped, not closed."""
    log: Path = pg.directory / "log"
    return log.read_text(encoding="utf-8", errors="replace").count(DROPPED)


# --- 2. HTTP ------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpVariant:
    name: str
    served: Served
    path: str
    baseline: str | None
    target: float | None = None
    """Pass when the ratio reaches this; None: reported only."""
    no_change: bool = False
    """Pass when the ratio is within ``NO_CHANGE`` of 1."""


BARE = Served("bare", "bare_app")
OFF = Served("off", "lifespan_di_app")
POOLED = Served("pooled", "lifespan_di_app", threads=THREADS)
POOLED_SIZED = Served("pooled sized", "lifespan_di_app", threads=SIZED)
BARE_PG = Served("bare pg", "bare_app", conn_max_age=0)
OFF_PG = Served("off pg", "lifespan_di_app", conn_max_age=0)
POOLED_PG = Served("pooled pg", "lifespan_di_app", threads=THREADS, conn_max_age=60)
POOLED_PG_SIZED = Served(
    "pooled pg sized", "lifespan_di_app", threads=SIZED, conn_max_age=60
)
POOLED_PG_0 = Served("pooled pg cma0", "lifespan_di_app", threads=THREADS,
                     conn_max_age=0)  # fmt: skip

A_BASE = "bare Django, async view"
S_BASE = "bare Django, sync view"
Q_BASE = "bare Django, query, CONN_MAX_AGE=0"
HTTP_VARIANTS = [
    HttpVariant(A_BASE, BARE, "/async/", None),
    HttpVariant("lifespan_di, setting off, async", OFF, "/async/", A_BASE,
                no_change=True),
    HttpVariant(f"lifespan_di, REQUEST_THREADS={THREADS}, async", POOLED, "/async/",
                A_BASE),
    HttpVariant(f"lifespan_di, REQUEST_THREADS={SIZED}, async", POOLED_SIZED,
                "/async/", A_BASE, HTTP_TARGET),
    HttpVariant(S_BASE, BARE, "/sync/", None),
    HttpVariant("lifespan_di, setting off, sync", OFF, "/sync/", S_BASE,
                no_change=True),
    HttpVariant(f"lifespan_di, REQUEST_THREADS={THREADS}, sync", POOLED, "/sync/",
                S_BASE),
    HttpVariant(f"lifespan_di, REQUEST_THREADS={SIZED}, sync", POOLED_SIZED, "/sync/",
                S_BASE, HTTP_TARGET),
    HttpVariant(Q_BASE, BARE_PG, "/query/", None),
    HttpVariant("lifespan_di, setting off, query, CONN_MAX_AGE=0", OFF_PG, "/query/",
                Q_BASE, no_change=True),
    HttpVariant(f"lifespan_di, REQUEST_THREADS={THREADS}, query, CONN_MAX_AGE=0",
                POOLED_PG_0, "/query/", Q_BASE),
    HttpVariant(f"lifespan_di, REQUEST_THREADS={THREADS}, query, CONN_MAX_AGE=60",
                POOLED_PG, "/query/", Q_BASE),
    HttpVariant(f"lifespan_di, REQUEST_THREADS={SIZED}, query, CONN_MAX_AGE=60",
                POOLED_PG_SIZED, "/query/", Q_BASE, QUERY_TARGET),
]  # fmt: skip


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p99_ms: float
    errors: int
    cpu_us: float
    """The server process's CPU time (all its threads) per request, in µs."""
    busy: float
    """The server process's CPU time over the load's wall time (1.0: one CPU)."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid``, all threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, duration: float, connections: int, cpu: int, pid: int) -> Load:
    """One bounded wrk run against server ``pid``: requests/s, p99 in ms, its CPU."""
    cpu_before, start = cpu_seconds(pid), time.monotonic()
    run = run_wrk(url, duration, connections, cpu)
    cpu_used, wall = cpu_seconds(pid) - cpu_before, time.monotonic() - start
    return Load(
        run.requests_per_s,
        run.p99_ms,
        run.errors,
        cpu_used / max(run.requests, 1) * 1e6,
        cpu_used / wall,
    )


def http_part(
    args: argparse.Namespace, pg: Any
) -> tuple[list[tuple[bool, str]], dict[str, Any]]:
    variants = HTTP_VARIANTS
    if pg is None:
        variants = [v for v in variants if v.served.conn_max_age is None]
    samples: dict[str, list[Load]] = {v.name: [] for v in variants}
    with ExitStack() as stack:
        servers: dict[Served, Server] = {}
        for index, served in enumerate(dict.fromkeys(v.served for v in variants)):
            log = args.logs / f"benchmark-threads-uvicorn-{index}.log"
            server = stack.enter_context(uvicorn(served, args.server_cpu, log, pg))
            servers[served] = server
        for variant in variants:
            wait_ready(servers[variant.served], variant.path)
        urls = {
            v.name: f"http://127.0.0.1:{servers[v.served].port}{v.path}"
            for v in variants
        }
        for variant in variants:  # warm-up
            server = servers[variant.served]
            wrk(urls[variant.name], 1, args.connections, args.client_cpu, server.pid)
        for round_ in range(args.rounds):
            shift = round_ % len(variants)
            for variant in [*variants[shift:], *variants[:shift]]:
                load = wrk(
                    urls[variant.name],
                    args.duration,
                    args.connections,
                    args.client_cpu,
                    servers[variant.served].pid,
                )
                samples[variant.name].append(load)
    reports = {
        served: pool_report(server.log)
        for served, server in servers.items()
        if served.threads is not None
    }
    print()
    print(
        f"2. Over HTTP: uvicorn on CPU {args.server_cpu}, wrk -t1 "
        f"-c{args.connections} on CPU {args.client_cpu}; {args.rounds} rounds x "
        f"{args.duration:g} s per variant"
    )
    width = max(len(v.name) for v in variants)
    print(
        f"{'variant':<{width}}  {'median':>7}  {'min-max':>11}  {'ratio':>6}  "
        f"{'p99':>6}  {'server CPU':>10}  {'busy':>4}"
    )
    print(
        f"{'':<{width}}  {'req/s':>7}  {'req/s':>11}  {'':>6}  {'ms':>6}  "
        f"{'µs/req':>10}"
    )
    data: dict[str, Any] = {}
    checks = []
    for variant in variants:
        loads = samples[variant.name]
        rps = [load.requests_per_s for load in loads]
        p99 = statistics.median(load.p99_ms for load in loads)
        cpu_us = statistics.median(load.cpu_us for load in loads)
        busy = statistics.median(load.busy for load in loads)
        errors = sum(load.errors for load in loads)
        ratio = None
        if variant.baseline is None:
            print("-" * (width + 63))
        else:
            base = [load.requests_per_s for load in samples[variant.baseline]]
            ratio = statistics.median(m / b for m, b in zip(rps, base, strict=True))
            if variant.target is not None:
                checks.append(
                    (
                        ratio >= variant.target,
                        f"HTTP, {variant.name}: {ratio:.3f}x "
                        f"(target >= {variant.target})",
                    )
                )
            if variant.no_change:
                checks.append(
                    (
                        abs(ratio - 1) <= NO_CHANGE,
                        f"HTTP, {variant.name}: {ratio:.3f}x "
                        f"(no change: within ±{NO_CHANGE:.0%})",
                    )
                )
        shown = "baseline" if ratio is None else f"{ratio:.3f}"
        print(
            f"{variant.name:<{width}}  {statistics.median(rps):>7.0f}  "
            f"{f'{min(rps):.0f}-{max(rps):.0f}':>11}  {shown:>6}  {p99:>6.1f}  "
            f"{cpu_us:>10.0f}  {busy:>4.2f}"
            + (f"  ({errors} errors)" if errors else "")
        )
        data[variant.name] = {
            "median": statistics.median(rps),
            "min": min(rps),
            "max": max(rps),
            "ratio": ratio,
            "p99_ms": p99,
            "server_cpu_us_per_request": cpu_us,
            "server_busy": busy,
            "errors": errors,
        }
    print("  pools, over every load of each server (warm-up included):")
    for served, report in reports.items():
        print(f"    REQUEST_THREADS={served.threads} ({served.name}): {report}")
    data["pools"] = {served.name: report for served, report in reports.items()}
    return checks, data


def pool_report(log: Path) -> str:
    """What the server's pool said at its lifespan shutdown: overflow and peak."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    found = [line for line in lines if line.startswith("REQUEST_THREADS: ")]
    return found[-1].removeprefix("REQUEST_THREADS: ") if found else "no report"


# --- 3. PostgreSQL backends ---------------------------------------------------------


@dataclass
class BackendRun:
    name: str
    answers: list[tuple[int, str]] = field(default_factory=list)
    errors: int = 0
    sampled: set[int] = field(default_factory=set)
    max_open: int = 0
    open_after_load: int = 0
    left_at_exit: int = 0
    left_after_wait: int = 0
    dropped_at_exit: int = 0
    exit_code: int | None = None
    seconds: float = 0.0

    def pooled(self) -> list[tuple[int, str]]:
        return [a for a in self.answers if a[1].startswith("lifespan_di-request-")]

    def overflow(self) -> list[tuple[int, str]]:
        return [a for a in self.answers if a[1].startswith("lifespan_di-overflow")]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": len(self.answers),
            "errors": self.errors,
            "seconds": self.seconds,
            "distinct_backends": len({a[0] for a in self.answers}),
            "pooled_requests": len(self.pooled()),
            "pooled_backends": len({a[0] for a in self.pooled()}),
            "overflow_requests": len(self.overflow()),
            "distinct_threads": len({a[1] for a in self.answers}),
            "sampled_backends": len(self.sampled),
            "max_open_backends": self.max_open,
            "open_after_load": self.open_after_load,
            "left_at_exit": self.left_at_exit,
            "left_after_wait": self.left_after_wait,
            "dropped_at_exit": self.dropped_at_exit,
            "exit_code": self.exit_code,
        }


def load_backends(port: int, requests: int, run: BackendRun) -> None:
    """``requests`` GETs of ``/query/`` from 32 threads, each with one connection."""
    lock = threading.Lock()
    remaining = [requests]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                try:
                    conn.request("GET", "/query/")
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    with lock:
                        run.errors += 1
                    continue
                if response.status != 200:
                    with lock:
                        run.errors += 1
                    continue
                pid, _, thread = body.decode().partition(" ")
                with lock:
                    run.answers.append((int(pid), thread))
        finally:
            conn.close()

    workers = [
        threading.Thread(target=worker, daemon=True)
        for _ in range(BACKENDS_CONCURRENCY)
    ]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=300)


def backends_part(
    args: argparse.Namespace, pg: Any
) -> tuple[list[tuple[bool, str]], dict[str, Any]]:
    from tests.processes import backend_pids

    runs = []
    for index, served in enumerate(
        [
            POOLED_PG,
            Served("bare 60", "bare_app", conn_max_age=60),
            Served("off 60", "lifespan_di_app", conn_max_age=60),
        ]
    ):
        label = {
            "pooled pg": f"lifespan_di, REQUEST_THREADS={THREADS}, CONN_MAX_AGE=60",
            "bare 60": "bare Django, CONN_MAX_AGE=60",
            "off 60": "lifespan_di, setting off, CONN_MAX_AGE=60",
        }[served.name]
        run = BackendRun(label)
        deadline = time.monotonic() + GONE_TIMEOUT
        while backend_pids(pg) and time.monotonic() < deadline:
            time.sleep(0.05)  # the previous server's backends
        log = args.logs / f"benchmark-threads-backends-{index}.log"
        with uvicorn(served, args.server_cpu, log, pg) as server:
            wait_ready(server, "/query/")
            done = threading.Event()

            def sample(run: BackendRun = run, done: threading.Event = done) -> None:
                while not done.is_set():
                    pids = backend_pids(pg)
                    run.sampled |= pids
                    run.max_open = max(run.max_open, len(pids))
                    done.wait(0.02)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            start = time.monotonic()
            load_backends(server.port, args.requests, run)
            run.seconds = time.monotonic() - start
            done.set()
            sampler.join(timeout=10)
            run.open_after_load = len(backend_pids(pg))
            dropped = dropped_connections(pg)
            run.exit_code = stop(server)
            run.left_at_exit = len(backend_pids(pg))
            deadline = time.monotonic() + GONE_TIMEOUT
            while (left := backend_pids(pg)) and time.monotonic() < deadline:
                time.sleep(0.05)
            run.left_after_wait = len(left)
            time.sleep(0.5)  # the backends' last log lines
            run.dropped_at_exit = dropped_connections(pg) - dropped
        runs.append(run)
    print()
    print(
        f"3. PostgreSQL backends: {args.requests} requests of /query/ at "
        f"{BACKENDS_CONCURRENCY} concurrency, then SIGTERM"
    )
    rows = [
        ("requests answered", "requests"),
        ("  errors", "errors"),
        ("seconds", "seconds"),
        ("distinct backend PIDs in answers", "distinct_backends"),
        ("  requests on pooled threads", "pooled_requests"),
        ("  backends of pooled threads", "pooled_backends"),
        ("  requests on overflow threads", "overflow_requests"),
        ("distinct threads in answers", "distinct_threads"),
        ("backend PIDs sampled (pg_stat_activity)", "sampled_backends"),
        ("most backends open at once (sampled)", "max_open_backends"),
        ("backends open after the load", "open_after_load"),
        ("server exit code after SIGTERM", "exit_code"),
        ("backends left when it exited", "left_at_exit"),
        (f"backends left {GONE_TIMEOUT:g} s later", "left_after_wait"),
        ("connections dropped by the exit, not closed", "dropped_at_exit"),
    ]
    summaries = [run.summary() for run in runs]
    width = max(len(row[0]) for row in rows)
    columns = [f"pooled {THREADS}, CMA 60", "bare, CMA 60", "setting off, CMA 60"]
    print(f"{'':<{width}}  " + "  ".join(f"{c:>20}" for c in columns))
    for row_name, key in rows:
        values = [s[key] for s in summaries]
        cells = "  ".join(
            f"{v:>20.1f}" if isinstance(v, float) else f"{v!s:>20}" for v in values
        )
        print(f"{row_name:<{width}}  {cells}")
    pooled = summaries[0]
    checks = [
        (
            pooled["pooled_backends"] <= THREADS
            and pooled["distinct_backends"] <= THREADS + pooled["overflow_requests"]
            and pooled["pooled_requests"] >= 2 * pooled["pooled_backends"]
            and pooled["errors"] == 0,
            f"backends, pooled: {pooled['distinct_backends']} distinct backends for "
            f"{pooled['requests']} requests ({pooled['pooled_backends']} of pooled "
            f"threads, {pooled['overflow_requests']} overflow requests; target <= "
            f"{THREADS} + overflow, reused)",
        ),
        (
            pooled["left_after_wait"] == 0 and pooled["dropped_at_exit"] == 0,
            f"backends, pooled: {pooled['left_at_exit']} left when the server exited"
            f" after SIGTERM, {pooled['left_after_wait']} after {GONE_TIMEOUT:g} s, "
            f"{pooled['dropped_at_exit']} dropped by the exit rather than closed "
            "(target 0)",
        ),
    ]
    return checks, {
        run.name: summary for run, summary in zip(runs, summaries, strict=True)
    }


# --- main ---------------------------------------------------------------------------

PARTS = ("in_process", "http", "backends")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="in process: requests per variant per round, 1,000 (1,024) x scale",
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="HTTP: seconds per load"
    )
    parser.add_argument("--connections", type=int, default=32, help="HTTP: wrk -c")
    parser.add_argument(
        "--requests", type=int, default=2000, help="backends: requests per variant"
    )
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument(
        "--only", action="append", choices=PARTS, help="run only this part"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 on a FAIL")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--logs", type=Path, default=Path("/tmp"), help="uvicorn logs go here"
    )
    args = parser.parse_args()
    parts = args.only or list(PARTS)
    if {"http", "backends"} & set(parts) and shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    import _threads_project

    for name in list(os.environ):  # the in-process project has no database
        if name.startswith("BENCH_"):
            del os.environ[name]
    _threads_project.setup()
    print(environment())
    checks: list[tuple[bool, str]] = []
    data: dict[str, Any] = {"environment": environment(), "args": vars(args) | {
        "json": str(args.json), "logs": str(args.logs)}}  # fmt: skip
    if "in_process" in parts:
        # Pinned like a uvicorn worker; restored for the servers' parents.
        allowed = os.sched_getaffinity(0)
        pin(args.server_cpu)
        try:
            found, data["in_process"] = asyncio.run(in_process(args.rounds, args.scale))
        finally:
            os.sched_setaffinity(0, allowed)
        checks += found
    with ExitStack() as stack:
        pg = None
        if {"http", "backends"} & set(parts):
            pg = stack.enter_context(postgres(args.client_cpu))
        if "http" in parts:
            found, data["http"] = http_part(args, pg)
            checks += found
        if "backends" in parts:
            found, data["backends"] = backends_part(args, pg)
            checks += found
    print()
    print("targets:")
    for ok, text in checks:
        print(f"  {verdict(ok)}  {text}")
    data["targets"] = [{"pass": ok, "text": text} for ok, text in checks]
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    passed = all(ok for ok, _ in checks)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
