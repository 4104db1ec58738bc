"""The example's container: every kind of resource a Django project tends to need."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import httpx
from dependency_injector import containers, providers
from django.conf import settings

from example_app.database import Favourites, open_database, ping_database, unit_of_work
from example_app.metrics import Metrics, create_metrics
from example_app.upstream import QuotesApi, upstream_url
from lifespan_di import ViewResource


# --8<-- [start:http_client]
@asynccontextmanager
async def create_http_client(
    metrics: Metrics,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """Async, and started after ``metrics``, which its response hook counts into."""

    async def count(response: httpx.Response) -> None:
        metrics.increment(f"upstream {response.status_code}")

    async with httpx.AsyncClient(
        transport=transport,
        timeout=5.0,
        event_hooks={"response": [count]},
    ) as client:
        yield client


# --8<-- [end:http_client]


# --8<-- [start:setting]
def setting(name: str) -> Any:
    """A Django setting, read when a provider is called: override_settings works."""
    return getattr(settings, name)


# --8<-- [end:setting]


# --8<-- [start:container]
class Container(containers.DeclarativeContainer):
    # Run by lifespan_di.urls' ready/ on each readiness probe.
    HEALTH_CHECKS: ClassVar[dict[str, Any]] = {"database": ping_database}

    # App-scoped: started at lifespan.startup, closed at lifespan.shutdown.
    metrics = providers.Resource(create_metrics)
    # None: the network. Tests replace it with httpx.MockTransport.
    upstream_transport = providers.Object[httpx.AsyncBaseTransport | None](None)
    # --8<-- [start:declare]
    http_client = providers.Resource(
        create_http_client, metrics=metrics, transport=upstream_transport
    )
    # --8<-- [end:declare]
    database = providers.Resource(
        open_database, path=providers.Callable(setting, "EXAMPLE_DATABASE")
    )

    # Request-scoped: one transaction per request, committed when the view returns,
    # before the response: a commit that fails is a 500, not a 200 for nothing saved.
    uow = ViewResource(unit_of_work, database=database)

    # Services, built from the resources on each use: the upstream's URL follows
    # the server each request came in to (example_app/upstream.py).
    quotes = providers.Factory(
        QuotesApi, client=http_client, base_url=providers.Callable(upstream_url)
    )
    favourites = providers.Factory(Favourites, uow=uow)


# --8<-- [end:container]
