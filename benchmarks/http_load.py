"""Requests/s and p99 latency over HTTP: lifespan_di next to bare Django, under uvicorn.

Needs wrk (``apt-get install -y wrk``) and uvloop + httptools (the ``bench`` extra).
Run it from the repository root, *not* under taskset: it pins each uvicorn to
``--server-cpu`` and wrk to ``--client-cpu`` itself::

    python benchmarks/http_load.py                          # 5 rounds x 5 s per variant
    python benchmarks/http_load.py --rounds 1 --duration 1  # smoke run, ~15 s
    python benchmarks/http_load.py --check                  # exit 1 on a FAIL

Each variant is its own uvicorn process (``--workers 1 --loop uvloop --http httptools
--no-access-log``, ``--lifespan on``, or ``off`` for bare Django, whose handler
rejects lifespan) on 127.0.0.1, on a port reserved here (``_common.reserved_port``:
not ``--fd``, through which every response waits ~40 ms for wrk's delayed ACK). All
of them start before the first load and stop (SIGTERM, by PID) after the last. Every
round loads every variant once, in an order that rotates from round to round, with
``wrk -t1 -c32 -d<duration>s --latency`` on one path; a warm-up load of 1 s per
variant comes first. The applications and views are the ones of ``in_process.py``
(``_project.py``).

For each variant: the median and min-max of requests/s over the rounds, the median
p99 latency, and "ratio": the median over the rounds of (variant's requests/s / the
same round's bare Django requests/s), bare Django with the same kind of view.

Target: every lifespan_di variant serves at least 0.97 x bare Django's requests/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from _common import pin, reserved_port, run_wrk, verdict

TARGET_RATIO = 0.97
BENCHMARKS = Path(__file__).resolve().parent
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Variant:
    name: str
    factory: str
    """``_project`` function that builds the application."""
    path: str
    baseline: str | None
    lifespan: str = "on"


VARIANTS = [
    Variant("bare Django, async view", "bare_app", "/async/", None, "off"),
    Variant("lifespan_di: middleware + state, async", "lifespan_di_app",
            "/state/async/", "bare Django, async view"),
    Variant("lifespan_di: inject 1 dep, async", "lifespan_di_app",
            "/inject/async/1/", "bare Django, async view"),
    Variant("django-asgi-lifespan: middleware + state, async", "dal_app",
            "/state/async/", "bare Django, async view"),
    Variant("dal + di @inject 1 dep, async", "dal_app", "/di/async/1/",
            "bare Django, async view"),
    Variant("bare Django, sync view", "bare_app", "/sync/", None, "off"),
    Variant("lifespan_di: inject 1 dep, sync", "lifespan_di_app",
            "/inject/sync/1/", "bare Django, sync view"),
]  # fmt: skip


@dataclass
class Server:
    variant: Variant
    process: subprocess.Popen[bytes]
    url: str


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p99_ms: float
    errors: int


@contextmanager
def uvicorn(variant: Variant, cpu: int, log: Path) -> Iterator[Server]:
    """Start ``variant`` under uvicorn pinned to ``cpu``; stop it by PID on exit."""
    with reserved_port() as port, log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"_project:{variant.factory}",
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
                variant.lifespan,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: pin(cpu),  # the parent has one thread
        )
        url = f"http://127.0.0.1:{port}{variant.path}"
        try:
            yield Server(variant, process, url)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(server: Server, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            msg = f"{server.variant.name}: uvicorn exited:\n{log.read_text()}"
            raise RuntimeError(msg)
        try:
            with urllib.request.urlopen(server.url, timeout=2) as response:
                body = response.read()
        except OSError:
            time.sleep(0.1)
            continue
        if body != b"ok":
            msg = f"{server.variant.name}: {server.url} answered {body!r}"
            raise RuntimeError(msg)
        return
    msg = f"{server.variant.name}: uvicorn did not serve within {READY_TIMEOUT} s"
    raise RuntimeError(msg)


def wrk(url: str, duration: float, connections: int, cpu: int) -> Load:
    """One bounded wrk run; return requests/s and the p99 latency in ms."""
    run = run_wrk(url, duration, connections, cpu)
    return Load(run.requests_per_s, run.p99_ms, run.errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="exit 1 on a FAIL")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--logs", type=Path, default=Path("/tmp"), help="uvicorn logs go here"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    import uvicorn as uvicorn_module

    version = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    print(
        f"Python {sys.version.split()[0]}, uvicorn {uvicorn_module.__version__}, "
        f"{version.stdout.split(' [')[0].strip()}; uvicorn on CPU {args.server_cpu}, "
        f"wrk on CPU {args.client_cpu} (of {os.cpu_count()}); {args.rounds} rounds "
        f"x {args.duration:g} s per variant, {args.connections} connections"
    )
    samples: dict[str, list[Load]] = {v.name: [] for v in VARIANTS}
    with ExitStack() as stack:
        servers = []
        for index, variant in enumerate(VARIANTS):
            log = args.logs / f"benchmark-uvicorn-{index}.log"
            server = stack.enter_context(uvicorn(variant, args.server_cpu, log))
            wait_ready(server, log)
            servers.append(server)
        for server in servers:  # warm-up
            wrk(server.url, 1, args.connections, args.client_cpu)
        for round_ in range(args.rounds):
            shift = round_ % len(servers)
            for server in [*servers[shift:], *servers[:shift]]:
                load = wrk(server.url, args.duration, args.connections, args.client_cpu)
                samples[server.variant.name].append(load)
    return report(samples, args)


def report(samples: dict[str, list[Load]], args: argparse.Namespace) -> int:
    width = max(len(v.name) for v in VARIANTS)
    print()
    print(f"{'variant':<{width}}  {'median':>7}  {'min-max':>11}  {'ratio':>6}  p99")
    print(f"{'':<{width}}  {'req/s':>7}  {'req/s':>11}  {'':>6}  ms (median)")
    data = {}
    passed = True
    checks = []
    for variant in VARIANTS:
        loads = samples[variant.name]
        rps = [load.requests_per_s for load in loads]
        p99 = statistics.median(load.p99_ms for load in loads)
        errors = sum(load.errors for load in loads)
        ratio = None
        if variant.baseline is None:
            print("-" * (width + 45))
        else:
            base = [load.requests_per_s for load in samples[variant.baseline]]
            ratio = statistics.median(m / b for m, b in zip(rps, base, strict=True))
            if variant.name.startswith("lifespan_di"):
                ok = ratio >= TARGET_RATIO
                passed = passed and ok
                checks.append(f"  {verdict(ok)}  {variant.name}: {ratio:.3f}x")
        shown = "baseline" if ratio is None else f"{ratio:.3f}"
        print(
            f"{variant.name:<{width}}  {statistics.median(rps):>7.0f}  "
            f"{f'{min(rps):.0f}-{max(rps):.0f}':>11}  {shown:>6}  {p99:.1f}"
            + (f"  ({errors} errors)" if errors else "")
        )
        data[variant.name] = {
            "median": statistics.median(rps),
            "min": min(rps),
            "max": max(rps),
            "ratio": ratio,
            "p99_ms": p99,
            "errors": errors,
        }
    print()
    print(f"target: lifespan_di serves >= {TARGET_RATIO} x bare Django's requests/s")
    print("\n".join(checks))
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
