"""Per-call cost of ``lifespan_di.inject``, next to dependency-injector's ``@inject``.

Run it from the repository root, pinned to one CPU on a shared machine (unpinned runs
are slower and much noisier)::

    taskset -c 1 python benchmarks/inject_overhead.py  # 20 rounds x 20,000 calls
    python benchmarks/inject_overhead.py --rounds 3 --calls 2000  # smoke run
    taskset -c 1 python benchmarks/inject_overhead.py --check  # exit 1 on a FAIL

Do not run it with ``-X dev`` / ``PYTHONDEVMODE=1``: asyncio's debug mode slows every
coroutine down and swamps what is measured.

What it measures: nanoseconds per call of small functions that only return what they
receive, inside a running ``container_lifespan()`` so that the resources have started:

* baselines: the undecorated function, called with its values passed explicitly;
* ``lifespan_di.inject`` with 1 dependency (a started resource) and with 5 (Singletons
  and Objects), each called with no arguments;
* dependency-injector's ``@inject``, wired the documented way
  (``container.wire(modules=[...])``), over the same providers.

Each variant exists as a sync function (plain call) and an ``async def`` function
(``await fn()``). One more async row shows dependency-injector's ``@inject`` of an async
resource started by ``container.init_resources()``, without lifespan_di: that provider
stays in async mode, so every call awaits an ``asyncio.gather``. Started by lifespan_di,
the same provider returns the plain value (lifespan_di disables async mode).

Variants are timed with ``time.perf_counter_ns`` in batches of ``--calls`` calls, one
batch of every variant per round (in a rotating order, so that machine noise hits all
of them alike), for ``--rounds`` rounds, with the garbage collector off as ``timeit``
does. The table shows, per variant, the median and min-max of ns/call over the rounds;
"added" and "ratio" compare each round's batch with the same round's baseline batch
and report the median over the rounds. Absolute figures vary between runs and
machines; compare only added ns and ratios from one run.

Target: ``lifespan_di.inject`` with one injected, already started resource adds at
most 1,000 ns per call over the undecorated call, for sync and for async functions.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import sys
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

import dependency_injector
import django
from dependency_injector import containers, providers
from dependency_injector.wiring import inject as di_inject
from django.conf import settings

from lifespan_di import Provide, container_lifespan, get_container, inject

TARGET_NS = 1000
"""The most ``lifespan_di.inject`` may add per call for one started resource."""


# --- The container ---------------------------------------------------------------


class Client:
    """Stands in for an HTTP client or a connection pool: what a resource yields."""

    def __init__(self, name: str) -> None:
        self.name = name


class Service:
    """Stands in for an app-wide service built once."""

    def __init__(self, name: str) -> None:
        self.name = name


@asynccontextmanager
async def open_async_client() -> AsyncIterator[Client]:
    yield Client("async")


@contextmanager
def open_sync_client() -> Iterator[Client]:
    yield Client("sync")


class Container(containers.DeclarativeContainer):
    async_client = providers.Resource(open_async_client)
    sync_client = providers.Resource(open_sync_client)
    s1 = providers.Singleton(Service, "s1")
    s2 = providers.Singleton(Service, "s2")
    s3 = providers.Singleton(Service, "s3")
    s4 = providers.Object(Service("s4"))
    s5 = providers.Object(Service("s5"))


# --- The functions under test ------------------------------------------------------
# Each returns what it received, so that the injected values can be checked.

Five = tuple[Service, Service, Service, Service, Service]


def plain_sync_1(client: Client) -> Client:
    return client


def plain_sync_5(
    s1: Service, s2: Service, s3: Service, s4: Service, s5: Service
) -> Five:
    return s1, s2, s3, s4, s5


async def plain_async_1(client: Client) -> Client:
    return client


async def plain_async_5(
    s1: Service, s2: Service, s3: Service, s4: Service, s5: Service
) -> Five:
    return s1, s2, s3, s4, s5


@inject
def lifespan_sync_1(client: Client = Provide[Container.sync_client]) -> Client:
    return client


@inject
def lifespan_sync_5(
    s1: Service = Provide[Container.s1],
    s2: Service = Provide[Container.s2],
    s3: Service = Provide[Container.s3],
    s4: Service = Provide[Container.s4],
    s5: Service = Provide[Container.s5],
) -> Five:
    return s1, s2, s3, s4, s5


@inject
async def lifespan_async_1(client: Client = Provide[Container.async_client]) -> Client:
    return client


@inject
async def lifespan_async_5(
    s1: Service = Provide[Container.s1],
    s2: Service = Provide[Container.s2],
    s3: Service = Provide[Container.s3],
    s4: Service = Provide[Container.s4],
    s5: Service = Provide[Container.s5],
) -> Five:
    return s1, s2, s3, s4, s5


@di_inject
def di_sync_1(client: Client = Provide[Container.sync_client]) -> Client:
    return client


@di_inject
def di_sync_5(
    s1: Service = Provide[Container.s1],
    s2: Service = Provide[Container.s2],
    s3: Service = Provide[Container.s3],
    s4: Service = Provide[Container.s4],
    s5: Service = Provide[Container.s5],
) -> Five:
    return s1, s2, s3, s4, s5


@di_inject
async def di_async_1(client: Client = Provide[Container.async_client]) -> Client:
    return client


@di_inject
async def di_async_5(
    s1: Service = Provide[Container.s1],
    s2: Service = Provide[Container.s2],
    s3: Service = Provide[Container.s3],
    s4: Service = Provide[Container.s4],
    s5: Service = Provide[Container.s5],
) -> Five:
    return s1, s2, s3, s4, s5


@di_inject
async def di_async_1_async_mode(
    client: Client = Provide[Container.async_client],
) -> Client:
    return client


def wire(container: containers.Container, name: str, *functions: Any) -> None:
    """Wire dependency-injector ``@inject`` functions the documented way.

    They get a module of their own, as views live in a views module: wiring this
    script's module would also wrap the lifespan_di functions, because ``wire()``
    patches every module-level function that has a marker.
    """
    module = types.ModuleType(name)
    for function in functions:
        setattr(module, function.__name__, function)
    container.wire(modules=[module])


# --- Timing ------------------------------------------------------------------------
# One factory per call shape, so that each timed call site is written out as a user
# would write it: a baseline pays for an ordinary call with keyword arguments, nothing
# more. Sync loops run inside a coroutine too; they never await.

Runner = Callable[[int], Awaitable[int]]
"""Make ``calls`` calls; return the nanoseconds they took."""


def sync_calls(fn: Callable[[], object]) -> Runner:
    async def run(calls: int) -> int:
        start = perf_counter_ns()
        for _ in range(calls):
            fn()
        return perf_counter_ns() - start

    return run


def sync_calls_1(fn: Callable[..., object], client: Client) -> Runner:
    async def run(calls: int) -> int:
        start = perf_counter_ns()
        for _ in range(calls):
            fn(client=client)
        return perf_counter_ns() - start

    return run


def sync_calls_5(fn: Callable[..., object], values: Five) -> Runner:
    s1, s2, s3, s4, s5 = values

    async def run(calls: int) -> int:
        start = perf_counter_ns()
        for _ in range(calls):
            fn(s1=s1, s2=s2, s3=s3, s4=s4, s5=s5)
        return perf_counter_ns() - start

    return run


def async_calls(fn: Callable[[], Awaitable[object]]) -> Runner:
    async def run(calls: int) -> int:
        start = perf_counter_ns()
        for _ in range(calls):
            await fn()
        return perf_counter_ns() - start

    return run


def async_calls_1(fn: Callable[..., Awaitable[object]], client: Client) -> Runner:
    async def run(calls: int) -> int:
        start = perf_counter_ns()
        for _ in range(calls):
            await fn(client=client)
        return perf_counter_ns() - start

    return run


def async_calls_5(fn: Callable[..., Awaitable[object]], values: Five) -> Runner:
    s1, s2, s3, s4, s5 = values

    async def run(calls: int) -> int:
        start = perf_counter_ns()
        for _ in range(calls):
            await fn(s1=s1, s2=s2, s3=s3, s4=s4, s5=s5)
        return perf_counter_ns() - start

    return run


@dataclass(frozen=True)
class Variant:
    """One timed call shape, and the baseline it is compared with."""

    name: str
    run: Runner
    baseline: Variant | None = None
    """None for a baseline itself."""


@dataclass(frozen=True)
class Result:
    samples: list[float]
    """ns per call, one per round."""
    added: float | None = None
    """Median over the rounds of (this batch - the baseline's batch), ns per call."""
    ratio: float | None = None
    """Median over the rounds of (this batch / the baseline's batch)."""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


async def measure(
    variants: Sequence[Variant], rounds: int, calls: int
) -> dict[Variant, Result]:
    """Time every variant once per round, rotating their order from round to round."""
    samples: dict[Variant, list[float]] = {variant: [] for variant in variants}
    for variant in variants:  # warm-up: caches, provider bindings, bytecode
        await variant.run(max(calls // 10, 100))
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for round_ in range(rounds):
            shift = round_ % len(variants)
            for variant in [*variants[shift:], *variants[:shift]]:
                elapsed = await variant.run(calls)
                samples[variant].append(elapsed / calls)
    finally:
        if gc_was_enabled:
            gc.enable()
    results = {}
    for variant in variants:
        mine = samples[variant]
        if variant.baseline is None:
            results[variant] = Result(mine)
            continue
        pairs = list(zip(mine, samples[variant.baseline], strict=True))
        results[variant] = Result(
            mine,
            added=statistics.median(m - b for m, b in pairs),
            ratio=statistics.median(m / b for m, b in pairs),
        )
    return results


# --- Checks and report ---------------------------------------------------------------


def check_received(function: str, got: object, expected: object) -> None:
    """Fail unless ``got`` is the started value itself, not a marker or a Future."""
    if isinstance(got, tuple) and isinstance(expected, tuple):
        pairs = list(zip(got, expected, strict=True))
    else:
        pairs = [(got, expected)]
    for received, wanted in pairs:
        if received is not wanted:
            msg = f"{function} received {received!r} instead of {wanted!r}."
            raise RuntimeError(msg)


def print_environment(rounds: int, calls: int) -> None:
    if hasattr(os, "sched_getaffinity"):
        cpus = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    else:
        cpus = "?"
    print(
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"dependency-injector {dependency_injector.__version__}"
    )
    print(
        f"{rounds} rounds x {calls} calls per variant; "
        f"CPUs allowed: {cpus} (of {os.cpu_count()})"
    )
    print()


def print_table(variants: Sequence[Variant], results: dict[Variant, Result]) -> None:
    width = max(len(variant.name) for variant in variants)
    header = (
        f"{'variant':<{width}}  {'median':>7}  {'min-max':>11}  {'added':>6}  ratio"
    )
    print(header)
    print(f"{'':<{width}}  {'ns/call':>7}  {'ns/call':>11}  {'ns':>6}")
    for variant in variants:
        result = results[variant]
        if variant.baseline is None:
            print("-" * (len(header) + 3))
        spread = f"{min(result.samples):.0f}-{max(result.samples):.0f}"
        added = "" if result.added is None else f"{result.added:+.0f}"
        ratio = "baseline" if result.ratio is None else f"{result.ratio:.2f}x"
        print(
            f"{variant.name:<{width}}  {result.median:>7.0f}  {spread:>11}  "
            f"{added:>6}  {ratio}"
        )
    print()
    print(
        "added, ratio: median over the rounds of each batch against the same "
        "round's\nbaseline batch (so they need not equal the difference of the "
        "medians)."
    )
    print(
        "(*) resource started by dependency-injector's init_resources(), not "
        "lifespan_di:\n    its provider stays in async mode and every call awaits "
        "asyncio.gather()."
    )


def print_targets(
    results: dict[Variant, Result], targets: Sequence[tuple[str, Variant, Variant]]
) -> bool:
    """Print PASS/FAIL for each target; return whether all passed."""
    print()
    print(f"targets: inject (1 dep) adds <= {TARGET_NS} ns over the undecorated call")
    passed = True
    for kind, variant, reference in targets:
        added = results[variant].added
        reference_added = results[reference].added
        assert added is not None
        assert reference_added is not None
        ok = added <= TARGET_NS
        passed = passed and ok
        print(
            f"  {'PASS' if ok else 'FAIL'}  {kind}: lifespan_di.inject adds "
            f"{added:.0f} ns per call (dependency-injector @inject: "
            f"{reference_added:.0f} ns)"
        )
    return passed


# --- Main ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """The values the resources and services have while the lifespan runs."""

    sync_client: Client
    async_client: Client
    five: Five
    async_mode_client: Client
    """The async resource of the container started by ``init_resources()``."""


async def check_injected(started: Started) -> None:
    """Call every decorated function once: each must receive the started values."""
    sync_client, async_client, five = (
        started.sync_client,
        started.async_client,
        started.five,
    )
    for function, got, expected in [
        ("lifespan_sync_1", lifespan_sync_1(), sync_client),
        ("lifespan_sync_5", lifespan_sync_5(), five),
        ("lifespan_async_1", await lifespan_async_1(), async_client),
        ("lifespan_async_5", await lifespan_async_5(), five),
        ("di_sync_1", di_sync_1(), sync_client),
        ("di_sync_5", di_sync_5(), five),
        ("di_async_1", await di_async_1(), async_client),
        ("di_async_5", await di_async_5(), five),
        (
            "di_async_1_async_mode",
            await di_async_1_async_mode(),
            started.async_mode_client,
        ),
    ]:
        check_received(function, got, expected)


Target = tuple[str, Variant, Variant]
"""(label, lifespan_di variant, dependency-injector variant) of one target."""


def build_variants(started: Started) -> tuple[list[Variant], list[Target]]:
    """Return the variants in table order, and the targets to check."""
    sync_1 = Variant(
        "sync   plain(client=...)", sync_calls_1(plain_sync_1, started.sync_client)
    )
    sync_5 = Variant(
        "sync   plain(s1=..., ..., s5=...)", sync_calls_5(plain_sync_5, started.five)
    )
    async_1 = Variant(
        "async  await plain(client=...)",
        async_calls_1(plain_async_1, started.async_client),
    )
    async_5 = Variant(
        "async  await plain(s1=..., ..., s5=...)",
        async_calls_5(plain_async_5, started.five),
    )
    lifespan_sync = Variant(
        "sync   lifespan_di inject, 1 dep", sync_calls(lifespan_sync_1), sync_1
    )
    di_sync = Variant("sync   di @inject, 1 dep", sync_calls(di_sync_1), sync_1)
    lifespan_async = Variant(
        "async  lifespan_di inject, 1 dep", async_calls(lifespan_async_1), async_1
    )
    di_async = Variant("async  di @inject, 1 dep", async_calls(di_async_1), async_1)
    variants = [
        sync_1,
        lifespan_sync,
        di_sync,
        sync_5,
        Variant(
            "sync   lifespan_di inject, 5 deps", sync_calls(lifespan_sync_5), sync_5
        ),
        Variant("sync   di @inject, 5 deps", sync_calls(di_sync_5), sync_5),
        async_1,
        lifespan_async,
        di_async,
        Variant(
            "async  di @inject, 1 dep, async mode (*)",
            async_calls(di_async_1_async_mode),
            async_1,
        ),
        async_5,
        Variant(
            "async  lifespan_di inject, 5 deps", async_calls(lifespan_async_5), async_5
        ),
        Variant("async  di @inject, 5 deps", async_calls(di_async_5), async_5),
    ]
    targets = [("sync ", lifespan_sync, di_sync), ("async", lifespan_async, di_async)]
    return variants, targets


async def run(rounds: int, calls: int) -> bool:
    """Start the resources, check what each function receives, time every variant.

    Returns whether every target passed.
    """
    container = get_container()  # the one LIFESPAN_DI['CONTAINER'] names
    # The reference for an async resource in async mode: a second container, started
    # by dependency-injector itself, without lifespan_di.
    async_mode = Container()
    async with container_lifespan(container) as state:
        wire(container, "views", di_sync_1, di_sync_5, di_async_1, di_async_5)
        await async_mode.init_resources()  # type: ignore[misc]
        wire(async_mode, "async_mode_views", di_async_1_async_mode)
        try:
            async_mode_client = await async_mode.async_client()  # type: ignore[misc]
            if not isinstance(async_mode_client, Client):
                msg = f"The async-mode resource is {async_mode_client!r}."
                raise TypeError(msg)
            started = Started(
                sync_client=state["sync_client"],
                async_client=state["async_client"],
                five=(
                    container.s1(),
                    container.s2(),
                    container.s3(),
                    container.s4(),
                    container.s5(),
                ),
                async_mode_client=async_mode_client,
            )
            await check_injected(started)
            variants, targets = build_variants(started)
            results = await measure(variants, rounds, calls)
        finally:
            container.unwire()
            async_mode.unwire()
            await async_mode.shutdown_resources()  # type: ignore[misc]
    print_table(variants, results)
    return print_targets(results, targets)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds (default 20)")
    parser.add_argument(
        "--calls", type=int, default=20_000, help="calls per batch (default 20000)"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target fails"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.calls < 1:
        parser.error("--rounds and --calls must be at least 1")

    settings.configure(
        INSTALLED_APPS=["lifespan_di"],
        LIFESPAN_DI={"CONTAINER": f"{__name__}.Container"},
    )
    django.setup()

    print_environment(args.rounds, args.calls)
    passed = asyncio.run(run(args.rounds, args.calls))
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
