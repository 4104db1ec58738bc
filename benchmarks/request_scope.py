"""Per-request cost of a ``RequestResource`` next to the same object made by hand.

Run it from the repository root, pinned to one CPU on a shared machine::

    taskset -c 1 python benchmarks/request_scope.py                # 15 full rounds
    python benchmarks/request_scope.py --rounds 3 --scale 0.1      # smoke run
    taskset -c 1 python benchmarks/request_scope.py --check       # exit 1 on a FAIL

Do not run it with ``-X dev`` / ``PYTHONDEVMODE=1`` (asyncio's debug mode).

Each pair of views does the same work on a session object, inside a running lifespan:

* by hand: the view opens and closes the session itself, ``with open_session() as
  session:`` (or ``async with``);
* RequestResource: the view receives ``session`` from ``@inject`` out of a
  ``RequestResource(open_session)``; lifespan_di opens it on first use and closes it
  after the response;
* ViewResource: the same out of a ``ViewResource(open_session)``, closed when the
  view returns, before the response is sent.

Pairs: an async view with a sync generator, an async view with an async generator,
and a sync view with a sync generator.

Two measurements:

1. **lifespan_di's work per request** (the target): the view called as the handler
   calls it, with what ``LifespanASGIHandler`` adds around it for request
   resources (open the request scope, wrap the view in ``make_view_atomic``, close
   it after the response, restore the context), against the by-hand view called
   alone (wrapped by Django's own ``make_view_atomic``). The sync pair runs the view
   in a worker thread, as Django does, for every variant. Batches of ``--calls``
   requests.
2. **Whole requests**: the same views served by ``LifespanASGIHandler`` (Django's
   full request path, called directly with an HTTP scope, no network), batches of
   ``--requests``. Django starts a thread per request here, so the spread of these
   figures is far larger than the difference measured in 1; they show that the
   difference disappears in a request's cost.

Within a round the variants alternate every 50 calls (in a rotating order), with the
garbage collector off; a round's figure is its mean per call, and "added" is the
median over the rounds of (the variant's figure - the same round's by-hand figure).

Target: at most 5 µs added per request that uses one request resource (measurement
1, async view with an async generator), for either lifetime. Once a ``ViewResource``
exists in the process, the handler wraps every view, so the RequestResource rows here
include that wrapper too. The other pairs are reported: a sync
resource opens in the request's thread, never on the event loop (Django's ORM works
there, and a slow teardown does not hold up other requests), so in an async view it
pays a thread hop the by-hand view, which blocks the loop, does not; a sync view's
teardown makes one more hop to the view's thread, so that a sync resource is closed
in the thread that opened it. That a sync teardown does not serialise requests is a
behaviour, tested in tests/test_request_scope_faults.py: ten concurrent async views
whose sync resource takes 0.2 s to close finish in 0.22 s there (2.0 s when it ran
on the loop).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import types
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from time import perf_counter_ns
from typing import Any

import django
from _common import Batch, Samples, environment, measure, serve
from asgiref.sync import iscoroutinefunction, sync_to_async
from dependency_injector import containers
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.test import AsyncRequestFactory
from django.urls import path

from lifespan_di import Provide, ViewResource, inject, lifespan
from lifespan_di.core.lifespan import RUNTIME
from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.providers import RequestResource
from lifespan_di.scope import enter_scope, exit_scope

TARGET_US = 5.0
"""The most a request resource may add per request (async view, async resource)."""
TARGET_PAIR = "async view, async generator"


class Session:
    """Stands in for a unit of work: opened, used, committed, closed."""

    __slots__ = ("committed",)

    def __init__(self) -> None:
        self.committed = False


def open_session() -> Iterator[Session]:
    session = Session()
    yield session
    session.committed = True


async def open_async_session() -> AsyncIterator[Session]:
    session = Session()
    yield session
    session.committed = True


class Container(containers.DeclarativeContainer):
    session = RequestResource(open_session)
    async_session = RequestResource(open_async_session)
    view_session = ViewResource(open_session)
    async_view_session = ViewResource(open_async_session)


async def by_hand(request: HttpRequest) -> HttpResponse:
    with contextmanager(open_session)() as session:
        return HttpResponse(type(session).__name__)


@inject
async def injected(
    request: HttpRequest, session: Session = Provide[Container.session]
) -> HttpResponse:
    return HttpResponse(type(session).__name__)


@inject
async def view_injected(
    request: HttpRequest, session: Session = Provide[Container.view_session]
) -> HttpResponse:
    return HttpResponse(type(session).__name__)


async def async_by_hand(request: HttpRequest) -> HttpResponse:
    async with asynccontextmanager(open_async_session)() as session:
        return HttpResponse(type(session).__name__)


@inject
async def async_injected(
    request: HttpRequest, session: Session = Provide[Container.async_session]
) -> HttpResponse:
    return HttpResponse(type(session).__name__)


@inject
async def async_view_injected(
    request: HttpRequest, session: Session = Provide[Container.async_view_session]
) -> HttpResponse:
    return HttpResponse(type(session).__name__)


def sync_by_hand(request: HttpRequest) -> HttpResponse:
    with contextmanager(open_session)() as session:
        return HttpResponse(type(session).__name__)


@inject
def sync_injected(
    request: HttpRequest, session: Session = Provide[Container.session]
) -> HttpResponse:
    return HttpResponse(type(session).__name__)


@inject
def sync_view_injected(
    request: HttpRequest, session: Session = Provide[Container.view_session]
) -> HttpResponse:
    return HttpResponse(type(session).__name__)


urls = types.ModuleType("benchmark_request_scope_urls")
urls.urlpatterns = [  # type: ignore[attr-defined]
    path("by-hand/", by_hand),
    path("injected/", injected),
    path("async-by-hand/", async_by_hand),
    path("async-injected/", async_injected),
    path("sync-by-hand/", sync_by_hand),
    path("sync-injected/", sync_injected),
    path("view-injected/", view_injected),
    path("async-view-injected/", async_view_injected),
    path("sync-view-injected/", sync_view_injected),
]
sys.modules[urls.__name__] = urls

PAIRS = [
    ("async view, sync generator", by_hand, injected, view_injected),
    ("async view, async generator", async_by_hand, async_injected, async_view_injected),
    ("sync view, sync generator", sync_by_hand, sync_injected, sync_view_injected),
]
LIFETIMES = ("RequestResource", "ViewResource")
PATHS = {
    by_hand: "/by-hand/",
    injected: "/injected/",
    async_by_hand: "/async-by-hand/",
    async_injected: "/async-injected/",
    sync_by_hand: "/sync-by-hand/",
    sync_injected: "/sync-injected/",
    view_injected: "/view-injected/",
    async_view_injected: "/async-view-injected/",
    sync_view_injected: "/sync-view-injected/",
}

View = Callable[[HttpRequest], Any]


# --- 1. lifespan_di's work per request ---------------------------------------------


async def ignore(message: Any) -> None:
    """The server's ``send``."""


def view_calls(app: LifespanASGIHandler, view: View, *, scoped: bool) -> Batch:
    """Call ``view`` and send its response as the handler does.

    ``scoped``: with what ``LifespanASGIHandler.handle`` and ``send_response`` add
    (the request scope, tracking the response, closing the request resources);
    otherwise with Django's own ``send_response``.
    """
    request = AsyncRequestFactory().get("/")
    is_async = iscoroutinefunction(view)

    def prepare() -> View:
        # Once per request, as Django's _get_response_async does.
        wrapped: View
        if scoped:
            wrapped = app.make_view_atomic(view)
        else:
            wrapped = ASGIHandler.make_view_atomic(app, view)
        if is_async:
            return wrapped
        return sync_to_async(wrapped, thread_sensitive=False)

    async def run(calls: int) -> float:
        start = perf_counter_ns()
        for _ in range(calls):
            if scoped:
                _, token = enter_scope()
                try:
                    response = await prepare()(request)
                    await app.send_response(response, ignore)
                finally:
                    exit_scope(token)
            else:
                response = await prepare()(request)
                await ASGIHandler.send_response(app, response, ignore)
            # Django's handle closes every response (in the request's thread, which
            # is where resources opened by a sync view are closed).
            response.close()
        return (perf_counter_ns() - start) / calls / 1000

    return run


# --- 2. Whole requests --------------------------------------------------------------


def request_calls(app: LifespanASGIHandler, path: str, state: dict[str, Any]) -> Batch:
    async def run(requests: int) -> float:
        start = perf_counter_ns()
        for _ in range(requests):
            await serve(app, path, state)
        return (perf_counter_ns() - start) / requests / 1000

    return run


# --- Measuring and reporting ----------------------------------------------------------


CHUNK = 50
"""Calls per variant in a row: variants alternate every CHUNK calls within a round, so
that the other processes of a shared machine slow all of them alike."""


def report(title: str, samples: Samples, *, check: bool) -> bool:
    print()
    print(title)
    print(f"{'variant':<46}  {'median':>7}  {'min-max':>13}  {'added':>6}")
    print(f"{'':<46}  {'µs/req':>7}  {'µs/req':>13}  {'µs':>6}")
    passed = True
    for label, *_ in PAIRS:
        baseline = samples[f"{label}: by hand"]
        spread = f"{min(baseline):.1f}-{max(baseline):.1f}"
        name = f"{label}: by hand"
        print(f"{name:<46}  {statistics.median(baseline):>7.1f}  {spread:>13}")
        for lifetime in LIFETIMES:
            mine = samples[f"{label}: {lifetime}"]
            added = statistics.median(
                m - b for m, b in zip(mine, baseline, strict=True)
            )
            spread = f"{min(mine):.1f}-{max(mine):.1f}"
            name = f"{label}: {lifetime}"
            print(
                f"{name:<46}  {statistics.median(mine):>7.1f}  {spread:>13}  "
                f"{added:>+6.1f}"
            )
            if check and label == TARGET_PAIR:
                ok = added <= TARGET_US
                passed = passed and ok
                verdict = "PASS" if ok else "FAIL"
                target = f"target <= {TARGET_US:g}"
                print(f"  {verdict}  {lifetime} adds {added:.1f} µs ({target})")
    return passed


async def run(rounds: int, scale: float) -> bool:
    calls, requests = int(20_000 * scale), int(2_000 * scale)
    app = LifespanASGIHandler()
    async with lifespan():
        assert RUNTIME.active is not None
        state = RUNTIME.active.state  # what a server copies into each request
        for view in PATHS:  # each view answers what it received
            _, body = await serve(app, PATHS[view], state)
            if body != b"Session":
                msg = f"{PATHS[view]} answered {body!r}"
                raise RuntimeError(msg)
        work = {}
        whole = {}
        for label, baseline, *views in PAIRS:
            work[f"{label}: by hand"] = view_calls(app, baseline, scoped=False)
            whole[f"{label}: by hand"] = request_calls(app, PATHS[baseline], state)
            for lifetime, mine in zip(LIFETIMES, views, strict=True):
                work[f"{label}: {lifetime}"] = view_calls(app, mine, scoped=True)
                whole[f"{label}: {lifetime}"] = request_calls(app, PATHS[mine], state)
        passed = report(
            f"1. lifespan_di's work per request ({rounds} rounds x {calls} calls)",
            await measure(work, rounds, calls, CHUNK, max(calls // 10, 10)),
            check=True,
        )
        report(
            f"2. Whole requests through LifespanASGIHandler ({rounds} rounds x "
            f"{requests} requests)",
            await measure(whole, rounds, requests, CHUNK, max(requests // 10, 10)),
            check=False,
        )
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="batch sizes: 20,000 calls x scale"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 on a FAIL")
    args = parser.parse_args()
    settings.configure(
        INSTALLED_APPS=["lifespan_di"],
        ROOT_URLCONF=urls.__name__,
        ALLOWED_HOSTS=["testserver"],
        MIDDLEWARE=[],
        LIFESPAN_DI={"CONTAINER": f"{__name__}.Container"},
    )
    django.setup()
    print(environment())
    passed = asyncio.run(run(args.rounds, args.scale))
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
