"""Per-request cost of lifespan_di in process, next to bare Django and the alternatives.

Run it from the repository root, pinned to one CPU on a shared machine::

    taskset -c 1 python benchmarks/in_process.py              # 15 rounds, ~6 minutes
    python benchmarks/in_process.py --rounds 2 --scale 0.05   # smoke run, ~20 s
    taskset -c 1 python benchmarks/in_process.py --check      # exit 1 on a FAIL

Do not run it with ``-X dev`` / ``PYTHONDEVMODE=1`` (asyncio's debug mode).

Three ASGI applications over one Django project (``_project.py``: one settings, one
URLconf with every view), all in this process, their lifespans started with a
lifespan driver as a server starts them:

* bare Django: ``ASGIHandler``, no middleware (the baselines: an async and a sync
  view that only answer), and a second instance of it, the "control" rows: what a
  variant that adds nothing measures in the same run, the floor of the measurement;
* lifespan_di: ``LifespanASGIHandler`` + ``LifespanStateMiddleware`` (installed, as
  users install it; the middleware steps aside under this handler); views that read
  ``request.state``, or receive 1 or 5 dependencies from ``lifespan_di.inject``. The
  project declares no ``RequestResource``, so requests open no request scope, except
  in the rows "a RequestResource declared", which pay for the scope that any
  project with request resources opens for every request (served by a handler
  instance of their own: from its first such request a handler closes request
  resources in its request path, for good);
* django-asgi-lifespan: its ``LifespanASGIHandler`` + ``LifespanStateMiddleware``;
  views that read ``request.state``, or receive 1 or 5 dependencies from
  dependency-injector's ``@inject``, wired the documented way to a container that a
  django-asgi-lifespan manager started with ``init_resources()``.

Two measurements of each (application, view) variant:

1. **Whole requests**: ``await app(scope, receive, send)`` with an HTTP scope and a
   copy of the lifespan state per request, driven as a server drives it (the
   disconnect comes after the response). Django hops to threads several times per
   request here (``request_started``, ``response.close``, a sync view), so these
   figures spread by several µs from round to round.
2. **Handler core**: the same request path without Django's thread layer, as
   ``ASGIHandler.handle`` runs it after reading the body: create the request, run the
   middleware and the view (``run_get_response``), ``send_response``, close the
   response; for lifespan_di inside its request scope where its ``__call__`` opens
   one. This resolves a few µs (django-asgi-lifespan's middleware, which does almost
   nothing, measured between -3 and +1 µs).

Each batch of requests runs with a URLconf whose only pattern is its view's, at one
path (``/view/``), so that every view costs the same to resolve. Within a round the
variants alternate every few requests (in a rotating order) with the garbage
collector off; a round's figure is its mean per request; "added" and "ratio" are the
medians over the rounds of (variant - the same round's baseline) and (variant /
baseline), baseline = bare Django with the same kind of view (async/sync).

Both measurements run twice: first with only the variants the targets compare
(bare Django, its control, lifespan_di with a ``request.state`` read and without),
then with every variant. Interleaving twenty applications and views every few
requests evicts each one's code and data from the CPU caches before its next turn,
which costs a variant in proportion to the code it runs: in a whole request,
lifespan_di's read measured +20 µs among every variant and +1 to +6 µs among its own,
for the same instructions (docs/benchmarks.md). A server runs one application, so
``--check`` judges the first two; the others compare the alternatives.

Target: ``LifespanStateMiddleware`` + a ``request.state`` read add at most 2 µs per
request, async and sync views. Whole requests are judged against it too, with the
control rows showing the noise of that measurement (several µs).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from _common import (
    Batch,
    LifespanDriver,
    Paired,
    Samples,
    environment,
    http_scope,
    measure,
    pair,
    serve,
)
from _common import verdict as verdict_of
from _project import VIEW_PATH, single_urlconf
from django.conf import settings

from lifespan_di.providers import RequestResource

TARGET_US = 2.0
"""The most LifespanStateMiddleware + a state read may add per request."""

"""Serve ``n`` requests; return µs per request."""


@dataclass(frozen=True)
class Variant:
    name: str
    app: str
    """Key of ``_project.APPS``."""
    path: str
    baseline: str | None
    """The baseline variant's name; None for a baseline."""
    declared: bool = False
    """Whether a ``RequestResource`` exists in the process (none is used): requests
    then open a request scope."""


VARIANTS = [
    Variant("bare Django, async view", "bare", "/async/", None),
    Variant("  control: bare Django again, async", "bare_again", "/async/",
            "bare Django, async view"),
    Variant("lifespan_di: middleware + state, async", "lifespan_di", "/state/async/",
            "bare Django, async view"),
    Variant("  of which: handler, no middleware", "lifespan_di_handler", "/async/",
            "bare Django, async view"),
    Variant("  of which: handler + middleware, no read", "lifespan_di", "/async/",
            "bare Django, async view"),
    Variant("  the same, a RequestResource declared, async", "lifespan_di_declared",
            "/state/async/", "bare Django, async view", declared=True),
    Variant("lifespan_di: inject 1 dep, async", "lifespan_di", "/inject/async/1/",
            "bare Django, async view"),
    Variant("lifespan_di: inject 5 deps, async", "lifespan_di", "/inject/async/5/",
            "bare Django, async view"),
    Variant("django-asgi-lifespan: middleware + state, async", "dal",
            "/state/async/", "bare Django, async view"),
    Variant("dal + di @inject 1 dep, async", "dal", "/di/async/1/",
            "bare Django, async view"),
    Variant("dal + di @inject 5 deps, async", "dal", "/di/async/5/",
            "bare Django, async view"),
    Variant("bare Django, sync view", "bare", "/sync/", None),
    Variant("  control: bare Django again, sync", "bare_again", "/sync/",
            "bare Django, sync view"),
    Variant("lifespan_di: middleware + state, sync", "lifespan_di", "/state/sync/",
            "bare Django, sync view"),
    Variant("  the same, a RequestResource declared, sync", "lifespan_di_declared",
            "/state/sync/", "bare Django, sync view", declared=True),
    Variant("lifespan_di: inject 1 dep, sync", "lifespan_di", "/inject/sync/1/",
            "bare Django, sync view"),
    Variant("lifespan_di: inject 5 deps, sync", "lifespan_di", "/inject/sync/5/",
            "bare Django, sync view"),
    Variant("django-asgi-lifespan: middleware + state, sync", "dal", "/state/sync/",
            "bare Django, sync view"),
    Variant("dal + di @inject 1 dep, sync", "dal", "/di/sync/1/",
            "bare Django, sync view"),
    Variant("dal + di @inject 5 deps, sync", "dal", "/di/sync/5/",
            "bare Django, sync view"),
]  # fmt: skip
TARGETS = [
    "lifespan_di: middleware + state, async",
    "lifespan_di: middleware + state, sync",
]
ALONE = [
    "bare Django, async view",
    "  control: bare Django again, async",
    "lifespan_di: middleware + state, async",
    "  of which: handler + middleware, no read",
    "bare Django, sync view",
    "  control: bare Django again, sync",
    "lifespan_di: middleware + state, sync",
]
"""The variants the targets compare, measured again interleaved with nothing else."""


async def ignore(message: Any) -> None:
    """The server's ``send``, when nothing needs to be seen."""


def whole_requests(app: Any, variant: Variant, state: dict[str, Any]) -> Batch:
    urlconf = single_urlconf(variant.path)

    async def run(requests: int) -> float:
        settings.ROOT_URLCONF = urlconf
        RequestResource.declared = variant.declared
        start = perf_counter_ns()
        for _ in range(requests):
            await serve(app, VIEW_PATH, state)
        return (perf_counter_ns() - start) / requests / 1000

    return run


def core_requests(app: Any, variant: Variant, state: dict[str, Any]) -> Batch:
    """``ASGIHandler.handle`` after the body is read, minus its thread hops."""
    from lifespan_di.handler import LifespanASGIHandler
    from lifespan_di.scope import enter_scope, exit_scope

    scoped = isinstance(app, LifespanASGIHandler) and variant.declared
    urlconf = single_urlconf(variant.path)

    async def run(requests: int) -> float:
        settings.ROOT_URLCONF = urlconf
        RequestResource.declared = variant.declared
        start = perf_counter_ns()
        for _ in range(requests):
            if scoped:  # as LifespanASGIHandler.__call__ does
                request_scope, token = enter_scope()
            request, _ = app.create_request(http_scope(VIEW_PATH, state), io.BytesIO())
            response = await app.run_get_response(request)
            await app.send_response(response, ignore)
            response.close()
            if scoped:
                if request_scope.open:
                    await request_scope.aclose(request_scope.exception)
                request_scope.end()
                exit_scope(token)
        return (perf_counter_ns() - start) / requests / 1000

    return run


def report(title: str, samples: Samples) -> dict[str, Paired]:
    print()
    print(title)
    variants = [variant for variant in VARIANTS if variant.name in samples]
    width = max(len(variant.name) for variant in VARIANTS)
    print(f"{'variant':<{width}}  {'median':>7}  {'min-max':>13}  {'added':>6}  ratio")
    print(f"{'':<{width}}  {'µs/req':>7}  {'µs/req':>13}  {'µs':>6}")
    results = {}
    for variant in variants:
        baseline = None if variant.baseline is None else samples[variant.baseline]
        result = results[variant.name] = pair(samples[variant.name], baseline)
        if variant.baseline is None:
            print("-" * (width + 43))
        low, high = result.spread
        added = "" if result.added is None else f"{result.added:+.1f}"
        ratio = "baseline" if result.ratio is None else f"{result.ratio:.3f}x"
        print(
            f"{variant.name:<{width}}  {result.median:>7.1f}  "
            f"{f'{low:.1f}-{high:.1f}':>13}  {added:>6}  {ratio}"
        )
    return results


def print_targets(results: dict[str, Paired]) -> bool:
    passed = True
    for name in TARGETS:
        added = results[name].added
        assert added is not None
        ok = added <= TARGET_US
        passed = passed and ok
        target = f"target <= {TARGET_US:g}"
        print(f"  {verdict_of(ok)}  {name}: adds {added:.1f} µs ({target})")
    return passed


async def run(rounds: int, scale: float) -> tuple[bool, dict[str, Any]]:
    import _project

    settings.ROOT_URLCONF = _project.__name__  # every view, for the startup checks
    whole_size, core_size = max(int(1_000 * scale), 10), max(int(10_000 * scale), 50)
    apps = {name: factory() for name, factory in _project.APPS.items()}
    drivers = {name: LifespanDriver(apps[name]) for name in ("lifespan_di", "dal")}
    for driver in drivers.values():
        await driver.startup()
    try:
        states = {name: driver.state for name, driver in drivers.items()}
        states["bare"] = states["bare_again"] = {}  # uvicorn --lifespan off sends {}
        # One lifespan_di lifespan per process: the handler's other instances serve
        # requests inside the one the full application started.
        states["lifespan_di_handler"] = states["lifespan_di"]
        states["lifespan_di_declared"] = states["lifespan_di"]
        # Every view answers "ok" with what it received; served as it is measured, so
        # that a handler has seen a RequestResource declared before its core rows.
        for variant in VARIANTS:
            RequestResource.declared = variant.declared
            got = await serve(apps[variant.app], variant.path, states[variant.app])
            if got != (200, _project.OK):
                msg = f"{variant.name} ({variant.path}) answered {got!r}"
                raise RuntimeError(msg)
        whole = {
            v.name: whole_requests(apps[v.app], v, states[v.app]) for v in VARIANTS
        }
        core = {v.name: core_requests(apps[v.app], v, states[v.app]) for v in VARIANTS}
        whole_chunk, core_chunk = 10, 50
        whole_warmup, core_warmup = max(whole_size // 10, 2), max(core_size // 10, 2)
        results = {}
        passed = True
        for key, title, batches, size, chunk, warmup in [
            ("whole_alone", "1. Whole requests, app(scope, receive, send), the "
             "targets' variants alone", whole, whole_size, whole_chunk, whole_warmup),
            ("core_alone", "2. Handler core, no thread layer, the targets' variants "
             "alone", core, core_size, core_chunk, core_warmup),
            ("whole", "3. Whole requests, every variant", whole, whole_size,
             whole_chunk, whole_warmup),
            ("core", "4. Handler core, every variant", core, core_size, core_chunk,
             core_warmup),
        ]:  # fmt: skip
            if key.endswith("_alone"):
                batches = {name: batches[name] for name in ALONE}
            results[key] = report(
                f"{title} ({rounds} rounds x {size} requests)",
                await measure(batches, rounds, size, chunk, warmup),
            )
            judged = print_targets(results[key])
            passed = passed and (judged or not key.endswith("_alone"))
    finally:
        RequestResource.declared = False
        for driver in drivers.values():
            await driver.shutdown()
    data = {
        title: {
            name: {
                "median": result.median,
                "min": result.spread[0],
                "max": result.spread[1],
                "added": result.added,
                "ratio": result.ratio,
            }
            for name, result in paired.items()
        }
        for title, paired in results.items()
    }
    return passed, data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="requests per variant per round: 1,000 whole / 10,000 core, x scale",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 on a FAIL")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    import _project

    _project.setup()
    print(environment())
    passed, data = asyncio.run(run(args.rounds, args.scale))
    if args.json is not None:
        data["environment"] = environment()
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
