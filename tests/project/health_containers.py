"""Containers for the health endpoint tests: resources whose checks a test steers.

Each resource yields a ``Probe``; its check sleeps ``delay`` seconds, then raises
``error`` or returns ``result``, so a test sets how the next check behaves.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, ClassVar

from dependency_injector import containers, providers


class Probe:
    """A resource value that records its checks and says how the next one behaves."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.delay = 0.0
        self.error: Exception | None = None
        self.result: object = True
        self.gate: threading.Event | None = None
        self.calls = 0
        self.threads: list[int] = []

    def _outcome(self) -> object:
        if self.error is not None:
            raise self.error
        return self.result


async def ping_async(probe: Probe) -> object:
    probe.calls += 1
    probe.threads.append(threading.get_ident())
    await asyncio.sleep(probe.delay)
    return probe._outcome()


def ping_sync(probe: Probe) -> object:
    probe.calls += 1
    probe.threads.append(threading.get_ident())
    if probe.gate is not None:
        probe.gate.wait(10)  # bounded: a test that forgets to open it still ends
    time.sleep(probe.delay)
    return probe._outcome()


@asynccontextmanager
async def async_probe(name: str) -> AsyncIterator[Probe]:
    yield Probe(name)


@contextmanager
def sync_probe(name: str) -> Iterator[Probe]:
    yield Probe(name)


def make_value() -> str:
    return "value"


class Infra(containers.DeclarativeContainer):
    """A nested container that declares the check of its own resource."""

    HEALTH_CHECKS: ClassVar[dict[str, Any]] = {"queue": ping_async}

    queue = providers.Resource(async_probe, "queue")


class Health(containers.DeclarativeContainer):
    """An async-checked, a sync-checked and an unchecked resource, plus nested ones."""

    HEALTH_CHECKS: ClassVar[dict[str, Any]] = {
        "db": ping_async,
        "cache": ping_sync,
        "search": ping_sync,
    }

    db = providers.Resource(async_probe, "db")
    cache = providers.Resource(sync_probe, "cache")
    search = providers.Resource(async_probe, "search")
    plain = providers.Resource(async_probe, "plain")
    infra = providers.Container(Infra)
    factory = providers.Factory(make_value)


class Unchecked(containers.DeclarativeContainer):
    """Resources without any health check."""

    db = providers.Resource(async_probe, "db")


class Broken(containers.DeclarativeContainer):
    """Every kind of mistake a HEALTH_CHECKS mapping can hold."""

    HEALTH_CHECKS: ClassVar[dict[Any, Any]] = {
        "dbb": ping_async,
        "factory": ping_async,
        "db": "not callable",
        3: ping_async,
    }

    db = providers.Resource(async_probe, "db")
    factory = providers.Factory(make_value)


class NotAMapping(containers.DeclarativeContainer):
    """HEALTH_CHECKS given as a list."""

    HEALTH_CHECKS: ClassVar = [ping_async]

    db = providers.Resource(async_probe, "db")


class Twice(containers.DeclarativeContainer):
    """A nested resource checked both by its container and by the parent."""

    HEALTH_CHECKS: ClassVar[dict[str, Any]] = {"infra.queue": ping_async}

    infra = providers.Container(Infra)
