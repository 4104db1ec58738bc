"""The Celery app ``celery_tasks.py`` runs workers of, in one of three variants.

Not a benchmark itself: ``celery_tasks.py`` starts ``python -m celery
--app=benchmarks.celery_app worker ...`` from the repository root with these
environment variables:

- ``LIFESPAN_DI_BENCH_VARIANT``: ``installed`` (``lifespan_di.celery.install(app)``:
  each worker process starts the resources once, each task runs in a request scope),
  ``per-task`` (no install: the task body is decorated ``@lifespan_di.with_lifespan``
  and opens ``lifespan_di.request_scope()`` itself, so every task starts and stops
  every resource) or ``bare`` (no resources, no lifespan_di: the floor).
- ``LIFESPAN_DI_BENCH_REDIS``: the Unix socket of the benchmark's redis-server, the
  broker, the result backend and what the ``redis`` resource connects to.
- ``LIFESPAN_DI_BENCH_RECORD``: the file each process appends ``<pid> <event>`` lines
  to: ``start:<name>`` / ``stop:<name>`` for the app resources (``stop`` when the
  teardown begins), ``open:session`` / ``close:session`` for the request resource,
  and ``task:<ms>``: how long the task function took in the worker (for ``installed``
  that excludes the request scope's own opening and closing, which ``install()``
  does in Celery's ``task_prerun`` / ``task_postrun``).

Django is configured here with ``settings.configure()``, as ``_project.py`` does, so
``DJANGO_SETTINGS_MODULE`` must not be set (Celery's Django fixup stays inactive in
every variant). All variants register the same task name, ``bench.work``.

The container holds what an app's tasks typically use: a ``redis.asyncio`` client
(connects and pings at startup, ``aclose()`` at shutdown), an ``httpx.AsyncClient``
(``aclose()`` at shutdown) and, per task, ``session``: a ``RequestResource`` of a sync
generator. The task increments a Redis counter through the client, on the
resources' event loop (``lifespan_di.run()``), checks the HTTP client is open, uses
the session, and returns the counter.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import ParamSpec, TypeVar

import django
import httpx
import redis.asyncio
from celery import Celery
from dependency_injector import containers, providers
from django.conf import settings

import lifespan_di
import lifespan_di.celery
from lifespan_di import Provide, RequestResource, inject

VARIANTS = ("installed", "per-task", "bare")
VARIANT = os.environ.get("LIFESPAN_DI_BENCH_VARIANT", "installed")
if VARIANT not in VARIANTS:
    msg = f"LIFESPAN_DI_BENCH_VARIANT={VARIANT!r}: expected one of {VARIANTS}"
    raise RuntimeError(msg)
REDIS_SOCKET = os.environ.get("LIFESPAN_DI_BENCH_REDIS", "")
REDIS_URL = f"redis+socket://{REDIS_SOCKET}"
TASK_NAME = "bench.work"

P = ParamSpec("P")
R = TypeVar("R")


def record(event: str) -> None:
    """Append one event of this process to the record file, if there is one."""
    path = os.environ.get("LIFESPAN_DI_BENCH_RECORD")
    if path:
        # One short write in append mode: lines of concurrent processes do not mix.
        with open(path, "a", encoding="utf-8") as file:
            file.write(f"{os.getpid()} {event}\n")


def timed(fn: Callable[P, R]) -> Callable[P, R]:
    """Record how long each call of ``fn`` took: ``task:<ms>``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            record(f"task:{(time.perf_counter() - started) * 1000:.3f}")

    return wrapper


# --- The container -------------------------------------------------------------------


async def open_redis() -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis(unix_socket_path=REDIS_SOCKET)
    await client.ping()
    record("start:redis")
    try:
        yield client
    finally:
        record("stop:redis")
        await client.aclose()


async def open_http() -> AsyncIterator[httpx.AsyncClient]:
    client = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
    record("start:http")
    try:
        yield client
    finally:
        record("stop:http")
        await client.aclose()


class Session:
    """Stands in for a unit of work opened per task (a DB session, a transaction)."""

    def __init__(self) -> None:
        self.used = 0


def open_session() -> Iterator[Session]:
    session = Session()
    record("open:session")
    try:
        yield session
    finally:
        record("close:session")


class Container(containers.DeclarativeContainer):
    redis = providers.Resource(open_redis)
    http = providers.Resource(open_http)
    session = RequestResource(open_session)


@inject
def work(
    number: int,
    client: redis.asyncio.Redis = Provide[Container.redis],
    http: httpx.AsyncClient = Provide[Container.http],
    session: Session = Provide[Container.session],
) -> int:
    """What the task does with its resources; returns the Redis counter."""
    if http.is_closed:
        msg = "the HTTP client is closed"
        raise RuntimeError(msg)
    session.used += 1
    count: int = lifespan_di.run(client.incr("bench:tasks"))
    return count


# --- Django and the Celery app --------------------------------------------------------

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmarks",
        INSTALLED_APPS=["lifespan_di"],
        LIFESPAN_DI={"CONTAINER": f"{__name__}.Container"},
        LOGGING_CONFIG=None,
    )
    django.setup(set_prefix=False)

app = Celery("benchmarks.celery_app")
app.conf.update(
    broker_url=REDIS_URL,
    result_backend=REDIS_URL,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # One task at a time per process, as the client sends them one at a time.
    worker_prefetch_multiplier=1,
)

if VARIANT == "installed":
    lifespan_di.celery.install(app)

    @app.task(name=TASK_NAME)
    @timed
    def installed_task(number: int) -> int:
        return work(number)

elif VARIANT == "per-task":

    @app.task(name=TASK_NAME)
    @timed
    @lifespan_di.with_lifespan
    def per_task(number: int) -> int:
        with lifespan_di.request_scope():
            return work(number)

else:

    @app.task(name=TASK_NAME)
    @timed
    def bare_task(number: int) -> int:
        return number
