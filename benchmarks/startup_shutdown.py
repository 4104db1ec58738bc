"""Startup and shutdown wall time: lifespan_di next to django-asgi-lifespan and DI.

Run it from the repository root (pinning is optional: the resources sleep)::

    taskset -c 1 python benchmarks/startup_shutdown.py            # 5 rounds, ~2 min
    python benchmarks/startup_shutdown.py --rounds 1 --quick      # smoke run, ~15 s
    taskset -c 1 python benchmarks/startup_shutdown.py --check    # exit 1 on a FAIL

Cases: N independent resources (N = 1, 10, 50) that each take 0.2 s to start and 0.2 s
to stop (``asyncio.sleep`` in an async generator), and a chain of 5 such resources,
each one an argument of the next (r2 = Resource(r2, r1), …).

Implementations:

* **lifespan_di**: ``LifespanASGIHandler(container=...)``, driven through the ASGI
  lifespan protocol: the time from sending ``lifespan.startup`` to receiving
  ``lifespan.startup.complete``, and likewise for shutdown.
* **django-asgi-lifespan**: its ``LifespanASGIHandler``, with one async context
  manager per resource registered with ``register_lifespan_manager``; same protocol
  timing. It has no dependencies between managers, so it has no chain case.
* **DI init_resources()**: ``await container.init_resources()`` and
  ``await container.shutdown_resources()`` on the same container as lifespan_di's
  (what dependency-injector's own Starlette ``Lifespan`` calls).

Each measurement runs in a fresh process, as a server starts its lifespan once per
process (django-asgi-lifespan's registrations cannot be undone in one process); rounds
interleave the implementations. The table shows the median and min-max over the rounds
and, from the last round, the order in which the resources began to start and to
stop.

Targets (lifespan_di): startup of N = 50 independent resources <= 0.2 s + 10 ms, of
the chain <= 1.0 s + 10 ms; shutdown likewise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import LifespanDriver, environment, verdict

DELAY = 0.2
"""Seconds each resource takes to start, and to stop."""
SLACK = 0.010
CASES = {"N=1": 1, "N=10": 10, "N=50": 50, "chain of 5": 5}
IMPLEMENTATIONS = ["lifespan_di", "django-asgi-lifespan", "DI init_resources()"]
TARGETS = {"N=50": DELAY + SLACK, "chain of 5": 5 * DELAY + SLACK}


# --- In the child process ------------------------------------------------------------

Events = list[tuple[float, str]]


def make_resource(
    name: str, events: Events, origin: list[float]
) -> Callable[..., AsyncIterator[str]]:
    """An async generator resource that takes DELAY to start and DELAY to stop."""

    async def resource(*dependencies: str) -> AsyncIterator[str]:
        events.append((time.perf_counter() - origin[0], f"start:{name}"))
        await asyncio.sleep(DELAY)
        yield name
        events.append((time.perf_counter() - origin[0], f"stop:{name}"))
        await asyncio.sleep(DELAY)

    resource.__name__ = name
    return resource


def build_container(case: str, events: Events, origin: list[float]) -> Any:
    from dependency_injector import containers, providers

    container = containers.DynamicContainer()
    previous: providers.Resource[str] | None = None
    for index in range(1, CASES[case] + 1):
        name = f"r{index}"
        resource = make_resource(name, events, origin)
        if case.startswith("chain") and previous is not None:
            provider = providers.Resource(resource, previous)
        else:
            provider = providers.Resource(resource)
        setattr(container, name, provider)
        previous = provider
    return container


async def child(implementation: str, case: str) -> dict[str, Any]:
    import django
    from django.conf import settings

    settings.configure(INSTALLED_APPS=["lifespan_di"], LOGGING_CONFIG=None)
    django.setup()
    events: Events = []
    origin = [0.0]
    if implementation == "lifespan_di":
        from lifespan_di import LifespanASGIHandler

        app = LifespanASGIHandler(container=build_container(case, events, origin))
        driver = LifespanDriver(app)
        origin[0] = time.perf_counter()
        startup = await driver.startup()
        origin[0] = time.perf_counter()
        shutdown = await driver.shutdown()
    elif implementation == "django-asgi-lifespan":
        from contextlib import asynccontextmanager

        from django_asgi_lifespan.handler import LifespanASGIHandler as DalHandler
        from django_asgi_lifespan.register import register_lifespan_manager

        for index in range(1, CASES[case] + 1):
            generator = make_resource(f"r{index}", events, origin)

            async def state(generator: Any = generator) -> AsyncIterator[Any]:
                async for value in generator():
                    yield {value: value}

            register_lifespan_manager(context_manager=asynccontextmanager(state))
        driver = LifespanDriver(DalHandler())
        origin[0] = time.perf_counter()
        startup = await driver.startup()
        origin[0] = time.perf_counter()
        shutdown = await driver.shutdown()
    else:
        container = build_container(case, events, origin)
        origin[0] = time.perf_counter()
        await container.init_resources()
        startup = time.perf_counter() - origin[0]
        origin[0] = time.perf_counter()
        await container.shutdown_resources()
        shutdown = time.perf_counter() - origin[0]
    return {"startup": startup, "shutdown": shutdown, "events": events}


# --- In the parent process -----------------------------------------------------------


@dataclass
class Outcome:
    startup: list[float]
    shutdown: list[float]
    events: Events


def applies(implementation: str, case: str) -> bool:
    return not (implementation == "django-asgi-lifespan" and case.startswith("chain"))


def measure_once(implementation: str, case: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", implementation, case],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    data: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return data


def order(events: Events, kind: str) -> str:
    """Describe the order in which resources began to start (or stop)."""
    mine = [(at, name.split(":")[1]) for at, name in events if name.startswith(kind)]
    if not mine:
        return "-"
    span = mine[-1][0] - mine[0][0]
    if len(mine) > 5 and span < DELAY / 2:
        return f"all {len(mine)} at once (within {span * 1000:.0f} ms)"
    if len(mine) > 5:
        return (
            f"one at a time over {span:.1f} s: {mine[0][1]}, {mine[1][1]}, ..., "
            f"{mine[-1][1]}"
        )
    return " ".join(f"{name}@{at:.1f}" for at, name in mine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="N=50 and the chain only (smoke run)"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 on a FAIL")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(*args.child))))
        return 0
    print(environment())
    cases = ["N=50", "chain of 5"] if args.quick else list(CASES)
    outcomes: dict[tuple[str, str], Outcome] = {}
    for round_ in range(args.rounds):
        shift = round_ % len(IMPLEMENTATIONS)
        for implementation in [*IMPLEMENTATIONS[shift:], *IMPLEMENTATIONS[:shift]]:
            for case in cases:
                if not applies(implementation, case):
                    continue
                data = measure_once(implementation, case)
                outcome = outcomes.setdefault(
                    (implementation, case), Outcome([], [], [])
                )
                outcome.startup.append(data["startup"])
                outcome.shutdown.append(data["shutdown"])
                outcome.events = [(at, name) for at, name in data["events"]]
    return report(cases, outcomes, args)


def seconds(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def report(
    cases: list[str], outcomes: dict[tuple[str, str], Outcome], args: Any
) -> int:
    print(f"\n{args.rounds} rounds; seconds: median (min-max)")
    header = f"{'case':<11}  {'implementation':<21}  {'startup':<21}  {'shutdown':<21}"
    print(header)
    print("-" * len(header))
    data: dict[str, Any] = {}
    for case in cases:
        for implementation in IMPLEMENTATIONS:
            outcome = outcomes.get((implementation, case))
            if outcome is None:
                print(f"{case:<11}  {implementation:<21}  n/a (no dependencies)")
                continue
            print(
                f"{case:<11}  {implementation:<21}  {seconds(outcome.startup):<21}  "
                f"{seconds(outcome.shutdown):<21}"
            )
            print(f"{'':<11}    start order: {order(outcome.events, 'start:')}")
            print(f"{'':<11}    stop order:  {order(outcome.events, 'stop:')}")
            data.setdefault(case, {})[implementation] = {
                "startup": statistics.median(outcome.startup),
                "shutdown": statistics.median(outcome.shutdown),
                "startup_min_max": [min(outcome.startup), max(outcome.startup)],
                "shutdown_min_max": [min(outcome.shutdown), max(outcome.shutdown)],
            }
    print()
    passed = True
    for case, limit in TARGETS.items():
        if case not in cases:
            continue
        outcome = outcomes[("lifespan_di", case)]
        for phase, values in [
            ("startup", outcome.startup),
            ("shutdown", outcome.shutdown),
        ]:
            value = statistics.median(values)
            ok = value <= limit
            passed = passed and ok
            print(
                f"  {verdict(ok)}  lifespan_di {phase}, {case}: {value:.4f} s "
                f"(target <= {limit:.3f})"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
