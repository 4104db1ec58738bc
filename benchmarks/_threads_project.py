"""The Django project ``request_threads.py`` serves, configured from the environment.

One settings, one URLconf, two ASGI applications:

* ``bare_app()``: ``django.core.asgi.get_asgi_application()``, Django's own handler;
* ``lifespan_di_app()``: ``lifespan_di.LifespanASGIHandler``.

Neither has middleware. The environment chooses (unset or empty: the default):

* ``BENCH_REQUEST_THREADS``: ``LIFESPAN_DI["REQUEST_THREADS"]`` (default None);
* ``BENCH_PG_HOST`` (the socket's directory), ``BENCH_PG_PORT``, ``BENCH_PG_NAME``,
  ``BENCH_PG_USER``: a PostgreSQL ``default`` database (default: no database);
* ``BENCH_CONN_MAX_AGE``: its ``CONN_MAX_AGE`` (default 0).

Views: ``/async/`` and ``/sync/`` answer ``ok``; ``/query/`` (sync) runs one query,
``SELECT pg_backend_pid()``, and answers ``<backend pid> <thread name>``.

uvicorn serves them with ``--app-dir benchmarks --factory _threads_project:bare_app``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import django
from dependency_injector import containers, providers
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path

from lifespan_di import LifespanASGIHandler

OK = b"ok"


class Container(containers.DeclarativeContainer):
    """lifespan_di needs a container; this one starts nothing."""

    config = providers.Object({"name": "benchmarks"})


async def bare_async(request: HttpRequest) -> HttpResponse:
    return HttpResponse(OK)


def bare_sync(request: HttpRequest) -> HttpResponse:
    return HttpResponse(OK)


def query(request: HttpRequest) -> HttpResponse:
    """One query; answers the PostgreSQL backend serving this thread, and the thread."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    assert row is not None
    return HttpResponse(f"{row[0]} {threading.current_thread().name}".encode())


urlpatterns = [
    path("async/", bare_async),
    path("sync/", bare_sync),
    path("query/", query),
]


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def request_threads_from_env() -> int | None:
    value = _env("BENCH_REQUEST_THREADS")
    return None if value is None else int(value)


def databases_from_env() -> dict[str, Any]:
    host = _env("BENCH_PG_HOST")
    if host is None:
        return {}
    return {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": host,
            "PORT": os.environ["BENCH_PG_PORT"],
            "NAME": os.environ["BENCH_PG_NAME"],
            "USER": os.environ["BENCH_PG_USER"],
            "PASSWORD": "",
            "CONN_MAX_AGE": int(_env("BENCH_CONN_MAX_AGE") or 0),
        }
    }


def lifespan_di_setting(request_threads: int | None) -> dict[str, Any]:
    """``LIFESPAN_DI`` for this project, with ``REQUEST_THREADS`` as given."""
    setting: dict[str, Any] = {"CONTAINER": f"{__name__}.Container"}
    if request_threads is not None:
        setting["REQUEST_THREADS"] = request_threads
    return setting


def setup() -> None:
    """Configure and set up Django from the environment, once."""
    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmarks",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["lifespan_di"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        DATABASES=databases_from_env(),
        LIFESPAN_DI=lifespan_di_setting(request_threads_from_env()),
        LOGGING_CONFIG=None,
    )
    django.setup(set_prefix=False)
    # The pool's report at shutdown (requests past REQUEST_THREADS, the peak) goes to
    # the server's log, where request_threads.py reads it.
    logger = logging.getLogger("lifespan_di")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(logging.StreamHandler())


def bare_app() -> ASGIHandler:
    """Bare Django, as its ``asgi.py`` builds it."""
    setup()
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


def lifespan_di_app() -> LifespanASGIHandler:
    setup()
    return LifespanASGIHandler()
