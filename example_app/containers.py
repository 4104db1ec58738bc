"""The example's container: one HTTP client per process, and a service using it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime

import httpx
from dependency_injector import containers, providers


@asynccontextmanager
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


class Clock:
    """A sync resource: remembers when the process started serving."""

    def __init__(self) -> None:
        self.started_at = datetime.now(UTC)


@contextmanager
def clock() -> Iterator[Clock]:
    yield Clock()


class Greeter:
    """A service built by a Factory from the app-wide client."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def fetch_status(self, url: str) -> int:
        response = await self.client.get(url)
        return response.status_code


class Container(containers.DeclarativeContainer):
    httpx_client = providers.Resource(http_client)
    clock = providers.Resource(clock)
    greeter = providers.Factory(Greeter, client=httpx_client)
