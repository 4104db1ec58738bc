"""The test project's container: an async client, a sync resource, a dependent factory.

Resources append ``start:<name>`` / ``stop:<name>`` lines to the file named by
``LIFESPAN_DI_TEST_RECORD`` so that end-to-end tests can see what a server process
did. ``LIFESPAN_DI_TEST_FAIL=<name>`` makes that resource fail at startup.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
from dependency_injector import containers, providers


def record(event: str) -> None:
    path = os.environ.get("LIFESPAN_DI_TEST_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(f"{event}\n")


def fail_if_asked(name: str) -> None:
    if os.environ.get("LIFESPAN_DI_TEST_FAIL") == name:
        msg = f"{name} cannot connect"
        raise ConnectionRefusedError(msg)


@asynccontextmanager
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    fail_if_asked("httpx_client")
    async with httpx.AsyncClient() as client:
        record("start:httpx_client")
        yield client
    record("stop:httpx_client")


class Counter:
    """A sync resource with mutable state shared by every request of the process."""

    def __init__(self) -> None:
        self.value = 0
        self.closed = False


@contextmanager
def counter() -> Iterator[Counter]:
    fail_if_asked("counter")
    record("start:counter")
    instance = Counter()
    yield instance
    instance.closed = True
    record("stop:counter")


class Greeter:
    """A service built from a resource by a Factory."""

    def __init__(self, client: httpx.AsyncClient, counter: Counter) -> None:
        self.client = client
        self.counter = counter

    def greet(self, name: str) -> str:
        return f"Hello, {name}!"


class Container(containers.DeclarativeContainer):
    httpx_client = providers.Resource(http_client)
    counter = providers.Resource(counter)
    greeter = providers.Factory(Greeter, client=httpx_client, counter=counter)
