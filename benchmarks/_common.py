"""Helpers shared by the benchmark scripts: driving an ASGI app, pairing samples.

Not a benchmark itself. The scripts import it from their own directory (Python puts
a script's directory first on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import re
import socket
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dependency_injector
import django


def environment() -> str:
    """One line naming the versions and the CPUs this process may run on."""
    cpus = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    return (
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"dependency-injector {dependency_injector.__version__}; "
        f"CPUs allowed: {cpus} (of {os.cpu_count()})"
    )


def http_scope(path: str, state: dict[str, Any] | None) -> dict[str, Any]:
    """A GET request's scope; ``state`` is copied, as servers copy it per request."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    if state is not None:
        scope["state"] = dict(state)
    return scope


async def serve(app: Any, path: str, state: dict[str, Any] | None) -> tuple[int, bytes]:
    """One request, as a server drives it: body, response, then the disconnect.

    ``receive`` returns the request, then waits until the response is complete
    before it returns ``http.disconnect``. Returns the status and the body.
    """
    done = asyncio.Event()
    body = []
    status = 0
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await app(http_scope(path, state), receive, send)
    return status, b"".join(body)


@dataclass(frozen=True)
class Paired:
    """One variant's samples against its baseline's, taken in the same rounds."""

    samples: Sequence[float]
    added: float | None = None
    """Median over the rounds of (sample - the same round's baseline sample)."""
    ratio: float | None = None
    """Median over the rounds of (sample / the same round's baseline sample)."""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.samples), max(self.samples)


def pair(samples: Sequence[float], baseline: Sequence[float] | None) -> Paired:
    """Pair ``samples`` round by round with ``baseline`` (None: it is a baseline)."""
    if baseline is None:
        return Paired(samples)
    pairs = list(zip(samples, baseline, strict=True))
    return Paired(
        samples,
        added=statistics.median(m - b for m, b in pairs),
        ratio=statistics.median(m / b for m, b in pairs),
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class LifespanDriver:
    """Drive an ASGI app's lifespan as a server does, timing each phase.

    ``startup()`` sends ``lifespan.startup`` and returns the seconds until the app
    answered ``lifespan.startup.complete``; ``shutdown()`` likewise. ``state`` is the
    lifespan scope's ``state``, which servers copy into every request.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _phase(self, name: str) -> float:
        start = time.perf_counter()
        await self._to_app.put({"type": f"lifespan.{name}"})
        message = await self._from_app.get()
        elapsed = time.perf_counter() - start
        if message["type"] != f"lifespan.{name}.complete":
            msg = f"{name} failed: {message}"
            raise RuntimeError(msg)
        return elapsed

    async def startup(self) -> float:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._task = asyncio.create_task(
            self.app(scope, self._to_app.get, self._from_app.put)
        )
        return await self._phase("startup")

    async def shutdown(self) -> float:
        elapsed = await self._phase("shutdown")
        assert self._task is not None
        await self._task
        return elapsed


# --- interleaved in-process measurements --------------------------------------------

Batch = Callable[[int], Awaitable[float]]
"""Serve or call ``n`` times; return µs per call."""
Samples = dict[str, list[float]]


async def measure(
    batches: dict[str, Batch], rounds: int, size: int, chunk: int, warmup: int
) -> Samples:
    """Run ``size`` calls of every variant per round, alternating every ``chunk``.

    Each variant first runs ``warmup`` calls. The order of the variants rotates from
    chunk to chunk, and the garbage collector is off while measuring.
    """
    for batch in batches.values():
        await batch(warmup)
    samples: Samples = {name: [] for name in batches}
    names = list(batches)
    chunks = max(size // chunk, 1)
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            totals = dict.fromkeys(names, 0.0)
            for index in range(chunks):
                shift = index % len(names)
                for name in [*names[shift:], *names[:shift]]:
                    totals[name] += await batches[name](chunk)
            for name in names:
                samples[name].append(totals[name] / chunks)
    finally:
        gc.enable()
    return samples


# --- load over HTTP -------------------------------------------------------------------


def pin(cpu: int) -> None:
    """Run this process on ``cpu`` only (before exec, in a child: ``preexec_fn``)."""
    os.sched_setaffinity(0, {cpu})


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run printed."""

    requests: int
    requests_per_s: float
    p99_ms: float
    errors: int
    """Non-2xx/3xx responses and socket errors."""


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(url: str, duration: float, connections: int, cpu: int) -> WrkRun:
    """One bounded ``wrk -t1 --latency`` run pinned to ``cpu``, read."""
    result = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration:g}s",
            "--latency",
            "--timeout",
            "5s",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
        preexec_fn=lambda: pin(cpu),  # the parent's other threads hold no lock
    )
    out = result.stdout
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if rps is None or p99 is None or total is None:
        msg = f"Cannot read wrk's output:\n{out}"
        raise RuntimeError(msg)
    errors = sum(
        int(n)
        for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors).*?(\d+)", out)
    )
    return WrkRun(int(total[1]), float(rps[1]), float(p99[1]) * _UNITS[p99[2]], errors)


@contextmanager
def reserved_port() -> Iterator[int]:
    """A free port on 127.0.0.1 for a server to bind, held until the block ends.

    A socket bound to port 0 with ``SO_REUSEADDR`` and never listening: no other
    process gets the port meanwhile, and the server (which sets ``SO_REUSEADDR``
    too, as uvicorn does) can bind it. Not ``--fd``: uvicorn 0.55 wraps a passed
    socket as ``AF_UNIX`` and never sets ``TCP_NODELAY`` on its connections, so a
    response written in two parts (Django's headers, then body) waits for the
    client's delayed ACK, about 40 ms on Linux, and wrk measures that.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
