"""The Django project the request benchmarks serve: settings, container, views, apps.

One settings, one URLconf with every view, and three ASGI applications built from
them in one process (``override_settings`` while each handler loads its middleware):

* ``bare_app()``: Django's own ``ASGIHandler``, no middleware: the baseline;
* ``lifespan_di_app()``: ``lifespan_di.LifespanASGIHandler`` with
  ``lifespan_di.middleware.LifespanStateMiddleware``, the container ``Container``;
* ``dal_app()``: django-asgi-lifespan's ``LifespanASGIHandler`` with its
  ``LifespanStateMiddleware``, and one lifespan manager registered the documented way
  (``register_lifespan_manager``) that starts a second ``Container`` with
  dependency-injector's ``init_resources()`` and yields its resources as the state.
  dependency-injector's ``@inject`` views are wired to that container the
  documented way, ``container.wire(modules=[...])``.

Every view answers ``ok``. The views with resources touch what they received (a
``Provide`` marker or a ``Future`` instead of the object would make them answer 500).

uvicorn serves them with ``--app-dir benchmarks --factory _project:bare_app`` (etc.).
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import django
from dependency_injector import containers, providers
from dependency_injector.wiring import inject as di_inject
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.test.utils import override_settings
from django.urls import path
from django_asgi_lifespan.handler import LifespanASGIHandler as DalHandler
from django_asgi_lifespan.register import register_lifespan_manager
from django_asgi_lifespan.types import State as DalState

from lifespan_di import LifespanASGIHandler, Provide, inject

OK = b"ok"
LIFESPAN_DI_MIDDLEWARE = "lifespan_di.middleware.LifespanStateMiddleware"
DAL_MIDDLEWARE = "django_asgi_lifespan.middleware.LifespanStateMiddleware"


# --- The container ---------------------------------------------------------------


class Client:
    """Stands in for an HTTP client or a pool: what a resource yields."""

    body = OK


class Service:
    """Stands in for an app-wide service built once."""

    body = OK


@asynccontextmanager
async def open_client() -> AsyncIterator[Client]:
    yield Client()


@contextmanager
def open_sync_client() -> Iterator[Client]:
    yield Client()


class Container(containers.DeclarativeContainer):
    client = providers.Resource(open_client)
    sync_client = providers.Resource(open_sync_client)
    s1 = providers.Singleton(Service)
    s2 = providers.Singleton(Service)
    s3 = providers.Singleton(Service)
    s4 = providers.Object(Service())
    s5 = providers.Object(Service())


# --- Views ---------------------------------------------------------------------------
# The baselines do nothing but answer; the others read one resource (or five) first.


async def bare_async(request: HttpRequest) -> HttpResponse:
    return HttpResponse(OK)


def bare_sync(request: HttpRequest) -> HttpResponse:
    return HttpResponse(OK)


async def state_async(request: HttpRequest) -> HttpResponse:
    client: Client = request.state["client"]  # type: ignore[attr-defined]
    return HttpResponse(client.body)


def state_sync(request: HttpRequest) -> HttpResponse:
    client: Client = request.state["sync_client"]  # type: ignore[attr-defined]
    return HttpResponse(client.body)


def five(s1: Service, s2: Service, s3: Service, s4: Service, s5: Service) -> bytes:
    return s1.body and s2.body and s3.body and s4.body and s5.body


@inject
async def inject_async_1(
    request: HttpRequest, client: Client = Provide[Container.client]
) -> HttpResponse:
    return HttpResponse(client.body)


@inject
async def inject_async_5(
    request: HttpRequest,
    s1: Service = Provide[Container.s1],
    s2: Service = Provide[Container.s2],
    s3: Service = Provide[Container.s3],
    s4: Service = Provide[Container.s4],
    s5: Service = Provide[Container.s5],
) -> HttpResponse:
    return HttpResponse(five(s1, s2, s3, s4, s5))


@inject
def inject_sync_1(
    request: HttpRequest, client: Client = Provide[Container.sync_client]
) -> HttpResponse:
    return HttpResponse(client.body)


@inject
def inject_sync_5(
    request: HttpRequest,
    s1: Service = Provide[Container.s1],
    s2: Service = Provide[Container.s2],
    s3: Service = Provide[Container.s3],
    s4: Service = Provide[Container.s4],
    s5: Service = Provide[Container.s5],
) -> HttpResponse:
    return HttpResponse(five(s1, s2, s3, s4, s5))


@di_inject
async def di_async_1(
    request: HttpRequest, client: Client = Provide[Container.client]
) -> HttpResponse:
    return HttpResponse(client.body)


@di_inject
async def di_async_5(
    request: HttpRequest,
    s1: Service = Provide[Container.s1],
    s2: Service = Provide[Container.s2],
    s3: Service = Provide[Container.s3],
    s4: Service = Provide[Container.s4],
    s5: Service = Provide[Container.s5],
) -> HttpResponse:
    return HttpResponse(five(s1, s2, s3, s4, s5))


@di_inject
def di_sync_1(
    request: HttpRequest, client: Client = Provide[Container.sync_client]
) -> HttpResponse:
    return HttpResponse(client.body)


@di_inject
def di_sync_5(
    request: HttpRequest,
    s1: Service = Provide[Container.s1],
    s2: Service = Provide[Container.s2],
    s3: Service = Provide[Container.s3],
    s4: Service = Provide[Container.s4],
    s5: Service = Provide[Container.s5],
) -> HttpResponse:
    return HttpResponse(five(s1, s2, s3, s4, s5))


# dependency-injector's views get a module of their own, as views live in a views
# module: wire() patches every module-level function that has a marker, so wiring
# this module would wrap the lifespan_di views a second time.
di_views = types.ModuleType("benchmark_di_views")
for _view in (di_async_1, di_async_5, di_sync_1, di_sync_5):
    setattr(di_views, _view.__name__, _view)

PATHS: dict[str, Any] = {
    "/async/": bare_async,
    "/sync/": bare_sync,
    "/state/async/": state_async,
    "/state/sync/": state_sync,
    "/inject/async/1/": inject_async_1,
    "/inject/async/5/": inject_async_5,
    "/inject/sync/1/": inject_sync_1,
    "/inject/sync/5/": inject_sync_5,
    "/di/async/1/": di_async_1,
    "/di/async/5/": di_async_5,
    "/di/sync/1/": di_sync_1,
    "/di/sync/5/": di_sync_5,
}
urlpatterns = [path(route.lstrip("/"), view) for route, view in PATHS.items()]


VIEW_PATH = "/view/"
"""Where ``single_urlconf()`` serves its one view."""


def single_urlconf(route: str) -> str:
    """The name of a URLconf module serving ``route``'s view alone, at ``VIEW_PATH``.

    Django tries the patterns in order, so in ``urlpatterns`` a view further down
    costs more to resolve (a few tenths of a µs per pattern before it), and a longer
    path costs more to match (``/state/async/`` 0.3 µs more than ``/async/``).
    Switching ``settings.ROOT_URLCONF`` to this module before a batch of requests to
    ``VIEW_PATH`` gives every view the same resolving cost.
    """
    name = f"benchmark_urls{route.replace('/', '_')}"
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.urlpatterns = [path(VIEW_PATH.lstrip("/"), PATHS[route])]  # type: ignore[attr-defined]
        sys.modules[name] = module
    return name


# --- Settings and applications --------------------------------------------------------

di_container = Container()
"""The container dependency-injector runs in ``dal_app()`` (lifespan_di has its own)."""


@asynccontextmanager
async def di_lifespan() -> AsyncIterator[DalState]:
    """A django-asgi-lifespan manager making dependency-injector's documented calls."""
    started = di_container.init_resources()
    if started is not None:
        await started
    try:
        client = di_container.client()
        if inspect.isawaitable(client):  # the async resource stays in async mode
            client = await client
        yield {"client": client, "sync_client": di_container.sync_client()}
    finally:
        stopped = di_container.shutdown_resources()
        if stopped is not None:
            await stopped


def setup() -> None:
    """Configure and set up Django for this project, once."""
    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmarks",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["lifespan_di"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[LIFESPAN_DI_MIDDLEWARE],
        LIFESPAN_DI={"CONTAINER": f"{__name__}.Container"},
        LOGGING_CONFIG=None,
    )
    django.setup(set_prefix=False)
    di_container.wire(modules=[di_views])
    register_lifespan_manager(context_manager=di_lifespan)


def bare_app() -> ASGIHandler:
    setup()
    with override_settings(MIDDLEWARE=[]):
        return ASGIHandler()


def lifespan_di_app() -> LifespanASGIHandler:
    setup()
    with override_settings(MIDDLEWARE=[LIFESPAN_DI_MIDDLEWARE]):
        return LifespanASGIHandler()


def lifespan_di_handler_app() -> LifespanASGIHandler:
    """lifespan_di's handler without its middleware: its own share of the cost."""
    setup()
    with override_settings(MIDDLEWARE=[]):
        return LifespanASGIHandler()


def dal_app() -> DalHandler:
    setup()
    with override_settings(MIDDLEWARE=[DAL_MIDDLEWARE]):
        return DalHandler()


APPS: dict[str, Any] = {
    "bare": bare_app,
    "bare_again": bare_app,  # a second instance: the measurement's own floor
    "lifespan_di": lifespan_di_app,
    "lifespan_di_handler": lifespan_di_handler_app,
    # The rows where a RequestResource is declared: a handler that has served such a
    # request closes request resources in its request path from then on, as in a
    # process that declares them; the other rows keep an instance that never has.
    "lifespan_di_declared": lifespan_di_app,
    "dal": dal_app,
}
