"""The test project's container: app resources, request resources, a dependent factory.

Resources append ``start:<name>`` / ``stop:<name>`` lines (request resources
``open:<name>:<id>``, ``commit:...``, ``rollback:...:<exception>``, ``close:...``) to
the file named by ``LIFESPAN_DI_TEST_RECORD`` so that end-to-end tests can see what a
server process did. ``LIFESPAN_DI_TEST_FAIL=<name>`` makes that resource fail at
startup.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
from dependency_injector import containers, providers

from lifespan_di.providers import RequestResource


def record(event: str) -> None:
    path = os.environ.get("LIFESPAN_DI_TEST_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(f"{event}\n")


def events(path: Path, prefix: str = "") -> list[str]:
    """The events recorded in ``path`` that start with ``prefix``, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.startswith(prefix)]


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


_session_ids = itertools.count(1)
_session_ids_lock = threading.Lock()


class Session:
    """A unit of work opened per request; it records how its request ended."""

    def __init__(self, name: str, app_resource: object) -> None:
        with _session_ids_lock:
            self.id = next(_session_ids)
        self.name = name
        self.app_resource = app_resource
        self.closed = False
        self.thread = threading.get_ident()

    def label(self) -> str:
        return f"{self.name}:{self.id}"


def session(counter: Counter) -> Iterator[Session]:
    """A sync generator request resource: commits on success, rolls back on error."""
    unit = Session("session", counter)
    record(f"open:{unit.label()}")
    try:
        yield unit
    except Exception as error:
        record(f"rollback:{unit.label()}:{type(error).__name__}")
        raise
    else:
        record(f"commit:{unit.label()}")
    finally:
        unit.closed = True
        record(f"close:{unit.label()}")


async def async_session(client: httpx.AsyncClient) -> AsyncIterator[Session]:
    """An async generator request resource depending on the app's httpx client."""
    unit = Session("async_session", client)
    record(f"open:{unit.label()}")
    try:
        yield unit
    except Exception as error:
        record(f"rollback:{unit.label()}:{type(error).__name__}")
        raise
    else:
        record(f"commit:{unit.label()}")
    finally:
        unit.closed = True
        record(f"close:{unit.label()}")


class Repository:
    """A service built per request from a request resource by a Factory."""

    def __init__(self, session: Session) -> None:
        self.session = session


class Container(containers.DeclarativeContainer):
    httpx_client = providers.Resource(http_client)
    counter = providers.Resource(counter)
    greeter = providers.Factory(Greeter, client=httpx_client, counter=counter)
    session = RequestResource(session, counter=counter)
    async_session = RequestResource(async_session, client=httpx_client)
    repository = providers.Factory(Repository, session=session)
