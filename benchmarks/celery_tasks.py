"""Celery task round trips: resources started once per worker process, or per task.

Needs redis-server (``apt-get install -y redis-server``), the ``celery`` extra
(Celery with its Redis transport, ``redis``) and httpx (``test`` or ``example``).
Run it with the project's virtualenv, from the repository root::

    python benchmarks/celery_tasks.py                        # 3 rounds x 50 tasks, 40 s
    python benchmarks/celery_tasks.py --rounds 1 --tasks 10  # smoke run, ~10 s
    python benchmarks/celery_tasks.py --check                # exit 1 on a FAIL

The script starts its own redis-server on a Unix socket in a short temporary
directory (``--port 0``, no persistence) and stops it by PID at the end. Each round
runs every variant once, in an order that rotates from round to round; each variant
is a fresh worker of ``benchmarks/celery_app.py``::

    python -m celery --app=benchmarks.celery_app worker --pool=prefork --concurrency=2
        --without-gossip --without-mingle --without-heartbeat

started from the repository root (``PYTHONPATH`` the repository, its own process
group, ``DJANGO_SETTINGS_MODULE`` unset: the app configures Django itself) with
``LIFESPAN_DI_BENCH_VARIANT`` set to:

- ``installed``: ``lifespan_di.celery.install(app)``; each worker process starts the
  container's resources once, every task runs in a request scope;
- ``per-task``: no install; the task body is decorated ``@lifespan_di.with_lifespan``
  and opens ``lifespan_di.request_scope()``, which is what the documentation
  suggested before ``install()``: every task starts and stops every resource;
- ``bare``: a task that uses no resources and no lifespan_di: the floor.

The container (``celery_app.py``): a ``redis.asyncio`` client (connect + PING at
startup, ``aclose()`` at shutdown), an ``httpx.AsyncClient``, and per task a
``RequestResource`` of a sync generator. The task body increments a Redis counter
through the client (``lifespan_di.run()``) and returns it.

Per variant and round: a warm-up of ``--warmup`` tasks, then ``--tasks`` tasks sent
one at a time from a Celery client on the same Redis (``send_task`` then
``.get(timeout)``); each round trip is timed in this process. Then SIGTERM to the
worker by PID (a warm shutdown), a bounded wait, SIGKILL to its process group if it
is still there. Every process appends ``<pid> start:<name>`` / ``stop:<name>`` /
``open:session`` / ``close:session`` lines to a record file, from which the script
counts what started where, what stopped after the SIGTERM, and the request
resource's opens and closes during the timed tasks.

Prints, per variant: median and p90 round-trip latency over all timed tasks, the
spread of the rounds' medians, "ratio": the median over the rounds of (variant's
median / the same round's ``installed`` median), "added": the same paired against
``bare``, and "in worker": the median time the task function took inside the worker
(recorded by the worker; for ``installed`` it leaves out the request scope's opening
and closing, done in Celery's ``task_prerun`` / ``task_postrun`` signals). Then, per
round, the resource counts and the worker's exit.

Targets, for ``installed``: every worker process (``--concurrency``) starts each
resource exactly once and none starts during the tasks; after SIGTERM each one is
stopped once and the worker exits with 0 without SIGKILL; the request resource is
opened and closed once per task (``per-task`` too); and a task costs at most 1 ms
more than ``bare``'s (median over the rounds of the paired round medians; the task
makes one Redis round trip of its own).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import celery
import redis
from _common import environment, verdict
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeoutError

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = "benchmarks.celery_app"
TASK_NAME = "bench.work"  # celery_app.TASK_NAME
VARIANTS = ("installed", "per-task", "bare")
RESOURCES = ("redis", "http")
TARGET_ADDED_MS = 1.0
READY_TIMEOUT = 60.0
"""Bound on a fresh worker's first task, and on redis-server's start."""
TASK_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
"""Bound on a worker's warm shutdown before its process group is killed."""
EVENT_TIMEOUT = 5.0
"""Bound on the wait for the last task's teardown, written after its result."""


@dataclass
class Run:
    """One variant's worker in one round: latencies and what its record says."""

    variant: str
    latencies: list[float]
    """Seconds per round trip, timed tasks only."""
    bodies: list[float]
    """Milliseconds each timed task's function took in the worker."""
    starts: dict[int, Counter[str]]
    """Resource starts per process, over the worker's whole life."""
    starts_during: Counter[str]
    """Resource starts during the timed tasks."""
    stops_after_term: dict[int, Counter[str]]
    opens: int
    closes: int
    exit_status: int | None
    killed: bool
    shutdown_s: float
    log: Path
    notes: list[str] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000


# --- redis-server -------------------------------------------------------------------


@contextmanager
def redis_server() -> Iterator[Path]:
    """A redis-server of this run's own on a Unix socket; stopped by PID on exit."""
    # A short directory: a Unix socket's path is limited to 107 bytes.
    directory = Path(tempfile.mkdtemp(prefix="ldi-bench-"))
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
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not socket_path.exists():
            if server.poll() is not None:
                msg = f"redis-server exited with status {server.returncode}"
                raise RuntimeError(msg)
            if time.monotonic() > deadline:
                msg = f"redis-server did not listen within {READY_TIMEOUT} s"
                raise RuntimeError(msg)
            time.sleep(0.02)
        yield socket_path
    finally:
        server.terminate()
        try:
            server.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=STOP_TIMEOUT)
        shutil.rmtree(directory, ignore_errors=True)


# --- a worker -----------------------------------------------------------------------


def read_events(record: Path, offset: int = 0) -> list[tuple[int, str]]:
    """The record's ``(pid, event)`` lines from byte ``offset`` on."""
    if not record.exists():
        return []
    with record.open("rb") as file:
        file.seek(offset)
        data = file.read().decode()
    events = []
    for line in data.splitlines():
        pid, _, name = line.partition(" ")
        events.append((int(pid), name))
    return events


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def start_worker(
    variant: str, redis_socket: Path, workdir: Path, concurrency: int
) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        PYTHONUNBUFFERED="1",
        LIFESPAN_DI_BENCH_VARIANT=variant,
        LIFESPAN_DI_BENCH_REDIS=str(redis_socket),
        LIFESPAN_DI_BENCH_RECORD=str(workdir / "record"),
    )
    with (workdir / "log").open("wb") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                f"--app={APP}",
                "worker",
                "--pool=prefork",
                f"--concurrency={concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=WARNING",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches children
        )


def round_trip(
    client: Celery,
    number: int,
    timeout: float,
    worker: subprocess.Popen[bytes],
    log: Path,
) -> float:
    """Send one task and wait for its result (bounded); return the seconds taken."""
    started = time.perf_counter()
    result = client.send_task(TASK_NAME, args=[number])
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = result.get(timeout=1.0)
            break
        except CeleryTimeoutError:
            if worker.poll() is not None:
                msg = f"the worker exited ({worker.returncode}):\n{tail(log)}"
                raise RuntimeError(msg) from None
            if time.monotonic() > deadline:
                msg = f"task {number}: no result within {timeout} s:\n{tail(log)}"
                raise RuntimeError(msg) from None
    elapsed = time.perf_counter() - started
    if not isinstance(value, int):
        msg = f"task {number} returned {value!r}"
        raise TypeError(msg)
    return elapsed


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_worker(worker: subprocess.Popen[bytes]) -> tuple[int | None, bool, float]:
    """SIGTERM the worker by PID, wait (bounded), SIGKILL its group if still there.

    Returns the exit status (None if it had to be killed), whether SIGKILL was sent,
    and the seconds from SIGTERM to the worker's exit.
    """
    started = time.perf_counter()
    worker.send_signal(signal.SIGTERM)
    killed = False
    status: int | None
    try:
        status = worker.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        status = None
    elapsed = time.perf_counter() - started
    deadline = time.monotonic() + 5.0
    while group_alive(worker.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if status is None or group_alive(worker.pid):
        killed = True
        with suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=STOP_TIMEOUT)
    return status, killed, elapsed


def wait_started(
    record: Path, processes: int, worker: subprocess.Popen[bytes], log: Path
) -> None:
    """Wait (bounded) until ``processes`` processes have started every resource.

    A prefork child may still be starting its resources when the other one has
    served the warm-up: that start would overlap the timed tasks.
    """
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        started = Counter(name for _, name in read_events(record))
        if all(started[f"start:{name}"] >= processes for name in RESOURCES):
            return
        if worker.poll() is not None or time.monotonic() > deadline:
            msg = f"{processes} processes did not start the resources:\n{tail(log)}"
            raise RuntimeError(msg)
        time.sleep(0.02)


def run_variant(
    variant: str,
    client: Celery,
    redis_socket: Path,
    workdir: Path,
    args: argparse.Namespace,
) -> Run:
    record, log = workdir / "record", workdir / "log"
    worker = start_worker(variant, redis_socket, workdir, args.concurrency)
    try:
        round_trip(client, -1, READY_TIMEOUT, worker, log)  # the worker is up
        for number in range(args.warmup - 1):
            round_trip(client, -2 - number, TASK_TIMEOUT, worker, log)
        if variant == "installed":
            wait_started(record, args.concurrency, worker, log)
        before = size(record)
        latencies = [
            round_trip(client, number, TASK_TIMEOUT, worker, log)
            for number in range(args.tasks)
        ]
        # The request scope closes after the result is stored (task_postrun).
        deadline = time.monotonic() + EVENT_TIMEOUT
        while True:
            during = read_events(record, before)
            names = Counter(name for _, name in during)
            if names["close:session"] >= names["open:session"]:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
    finally:
        before_term = size(record)
        status, killed, shutdown_s = stop_worker(worker)
    starts: dict[int, Counter[str]] = {}
    for pid, name in read_events(record):
        if name.startswith("start:"):
            starts.setdefault(pid, Counter())[name.removeprefix("start:")] += 1
    stops: dict[int, Counter[str]] = {}
    for pid, name in read_events(record, before_term):
        if name.startswith("stop:"):
            stops.setdefault(pid, Counter())[name.removeprefix("stop:")] += 1
    return Run(
        variant=variant,
        latencies=latencies,
        bodies=[
            float(name.removeprefix("task:"))
            for _, name in during
            if name.startswith("task:")
        ],
        starts=starts,
        starts_during=Counter(
            name.removeprefix("start:")
            for _, name in during
            if name.startswith("start:")
        ),
        stops_after_term=stops,
        opens=names["open:session"],
        closes=names["close:session"],
        exit_status=status,
        killed=killed,
        shutdown_s=shutdown_s,
        log=log,
    )


# --- the report ---------------------------------------------------------------------


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def per_resource(counts: dict[int, Counter[str]]) -> str:
    """``redis 1, http 1`` (or ``min-max`` over the processes)."""
    parts = []
    for resource in RESOURCES:
        values = [c[resource] for c in counts.values()]
        if not values:
            parts.append(f"{resource} 0")
        elif min(values) == max(values):
            parts.append(f"{resource} {values[0]}")
        else:
            parts.append(f"{resource} {min(values)}-{max(values)}")
    return ", ".join(parts)


def report(runs: dict[str, list[Run]], args: argparse.Namespace) -> int:
    print()
    print(f"1. Round trip per task ({args.rounds} rounds x {args.tasks} tasks)")
    print(
        f"{'variant':<10}  {'median':>7}  {'p90':>7}  {'round medians':>14}  "
        f"{'ratio':>6}  {'added':>7}  {'in worker':>9}"
    )
    print(
        f"{'':<10}  {'ms':>7}  {'ms':>7}  {'ms, min-max':>14}  "
        f"{'/inst.':>6}  {'ms/bare':>7}  {'ms median':>9}"
    )
    installed = [run.median_ms for run in runs["installed"]]
    bare = [run.median_ms for run in runs["bare"]]
    added_by_variant = {}
    for variant in VARIANTS:
        medians = [run.median_ms for run in runs[variant]]
        pooled = [s * 1000 for run in runs[variant] for s in run.latencies]
        ratio = statistics.median(
            m / i for m, i in zip(medians, installed, strict=True)
        )
        added = statistics.median(m - b for m, b in zip(medians, bare, strict=True))
        added_by_variant[variant] = added
        spread = f"{min(medians):.2f}-{max(medians):.2f}"
        shown_ratio = "-" if variant == "installed" else f"{ratio:.2f}"
        shown_added = "-" if variant == "bare" else f"{added:+.2f}"
        bodies = [ms for run in runs[variant] for ms in run.bodies]
        body = f"{statistics.median(bodies):.3f}" if bodies else "?"
        print(
            f"{variant:<10}  {statistics.median(pooled):>7.2f}  {p90(pooled):>7.2f}  "
            f"{spread:>14}  {shown_ratio:>6}  {shown_added:>7}  {body:>9}"
        )
    print()
    print("2. Resources, per round (starts: per process per resource over the worker's")
    print(
        f"   life; 'in tasks': starts during the {args.tasks} timed tasks; session: "
        "opens/closes during them)"
    )
    print(
        f"{'round':>5}  {'variant':<10}  {'procs':>5}  {'starts':<22}  "
        f"{'in tasks':<18}  {'stops after SIGTERM':<20}  {'session':>7}  exit"
    )
    for round_ in range(args.rounds):
        for variant in VARIANTS:
            run = runs[variant][round_]
            during = ", ".join(
                f"{resource} {run.starts_during[resource]}" for resource in RESOURCES
            )
            stops = sum(sum(c.values()) for c in run.stops_after_term.values())
            exit_ = "SIGKILL" if run.killed else str(run.exit_status)
            print(
                f"{round_ + 1:>5}  {variant:<10}  {len(run.starts):>5}  "
                f"{per_resource(run.starts):<22}  {during:<18}  "
                f"{f'{stops} in {len(run.stops_after_term)} procs':<20}  "
                f"{f'{run.opens}/{run.closes}':>7}  {exit_} "
                f"({run.shutdown_s:.2f} s)"
            )
    return targets(runs, added_by_variant["installed"], args)


def targets(runs: dict[str, list[Run]], added: float, args: argparse.Namespace) -> int:
    checks: list[tuple[bool, str]] = []
    inst = runs["installed"]
    once = all(
        len(run.starts) == args.concurrency
        and all(c[r] == 1 for c in run.starts.values() for r in RESOURCES)
        and not run.starts_during
        for run in inst
    )
    checks.append(
        (
            once,
            f"installed: each of the {args.concurrency} worker processes starts each "
            "resource once, none during the tasks",
        )
    )
    stopped = all(
        run.stops_after_term == run.starts and run.exit_status == 0 and not run.killed
        for run in inst
    )
    checks.append(
        (stopped, "installed: after SIGTERM each start is stopped once, exit 0")
    )
    for variant in ("installed", "per-task"):
        per_task = all(run.opens == run.closes == args.tasks for run in runs[variant])
        checks.append(
            (per_task, f"{variant}: the session opens and closes once per task")
        )
    checks.append(
        (
            added <= TARGET_ADDED_MS,
            f"installed: adds {added:.2f} ms per task over bare "
            f"(target <= {TARGET_ADDED_MS:g})",
        )
    )
    print()
    print("targets:")
    for ok, text in checks:
        print(f"  {verdict(ok)}  {text}")
    passed = all(ok for ok, _ in checks)
    return 1 if args.check and not passed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=50, help="timed tasks per run")
    parser.add_argument("--warmup", type=int, default=5, help="tasks before timing")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--check", action="store_true", help="exit 1 on a FAIL")
    args = parser.parse_args()
    if args.warmup < 1 or args.tasks < 2 or args.rounds < 1:
        parser.error("--warmup >= 1, --tasks >= 2 and --rounds >= 1")
    if shutil.which("redis-server") is None:
        print(
            "redis-server is not installed: apt-get install -y redis-server",
            file=sys.stderr,
        )
        return 2
    server_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, timeout=10
    ).stdout.split()
    print(environment())
    print(
        f"Celery {celery.__version__}, redis-py {redis.__version__}, "
        f"{' '.join(server_version[:3])}; prefork --concurrency={args.concurrency}; "
        f"{args.rounds} rounds x ({args.warmup} warm-up + {args.tasks} timed tasks) "
        "per variant"
    )
    runs: dict[str, list[Run]] = {variant: [] for variant in VARIANTS}
    workdir = Path(tempfile.mkdtemp(prefix="ldi-bench-workers-"))
    try:
        with redis_server() as socket_path:
            url = f"redis+socket://{socket_path}"
            client = Celery(
                "benchmarks.celery_client",
                broker=url,
                backend=url,
                set_as_current=False,
            )
            try:
                for round_ in range(args.rounds):
                    shift = round_ % len(VARIANTS)
                    for variant in [*VARIANTS[shift:], *VARIANTS[:shift]]:
                        run = run_variant(
                            variant,
                            client,
                            socket_path,
                            workdir / f"{round_ + 1}-{variant}",
                            args,
                        )
                        runs[variant].append(run)
                        print(
                            f"  round {round_ + 1}: {variant:<9} median "
                            f"{run.median_ms:.2f} ms",
                            flush=True,
                        )
            finally:
                client.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report(runs, args)


if __name__ == "__main__":
    sys.exit(main())
