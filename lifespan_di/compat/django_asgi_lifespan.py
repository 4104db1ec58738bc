"""django-asgi-lifespan's interface: its signals, lifespan managers and type aliases.

A project migrating from django-asgi-lifespan keeps its imports with the package
name changed: ``lifespan_di.signals``, ``lifespan_di.register`` and
``lifespan_di.types`` re-export what is defined here, ``lifespan_di.asgi`` holds
``get_asgi_application``, ``lifespan_di.middleware`` the middleware (also as
``AsyncMiddleware``) and ``lifespan_di.testing`` ``LifespanAwareAsyncClient``.

Registered managers start and stop with the container's resources: concurrently,
rolled back if anything fails to start, shut down in reverse order, bounded by the
same timeouts.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeAlias

from django.dispatch import Signal

__all__ = [
    "LifespanManager",
    "ManagerFactory",
    "State",
    "asgi_lifespan",
    "asgi_shutdown",
    "asgi_startup",
    "register_lifespan_manager",
    "registered_managers",
    "signal_receivers",
]

asgi_startup = Signal()
"""Sent once every resource and lifespan manager has started, before the server is
told that startup is complete. A receiver that raises fails the startup."""

asgi_shutdown = Signal()
"""Sent when the server asks for shutdown, before any resource is shut down."""

asgi_lifespan = Signal()
"""Collects lifespan managers: each receiver returns one (see ``register``)."""

ManagerFactory: TypeAlias = Callable[[], AbstractAsyncContextManager[Mapping[str, Any]]]
"""A callable returning an async context manager that yields state values, such as an
``@asynccontextmanager`` function: a lifespan manager."""

State: TypeAlias = MutableMapping[str, Any]
"""What a lifespan manager yields; ``request.state`` satisfies it too."""

LifespanManager: TypeAlias = AsyncGenerator[State, None]
"""The return annotation of an ``@asynccontextmanager`` lifespan manager."""


@dataclass(frozen=True, eq=False)
class _ManagerReceiver:
    context_manager: ManagerFactory

    def __call__(self, **kwargs: Any) -> ManagerFactory:
        return self.context_manager


def register_lifespan_manager(*, context_manager: ManagerFactory) -> None:
    """Run ``context_manager`` for every lifespan; what it yields joins the state.

    Call it from ``AppConfig.ready()``:

    ```python
    @asynccontextmanager
    async def httpx_lifespan_manager():
        async with httpx.AsyncClient() as client:
            yield {"httpx_client": client}

    register_lifespan_manager(context_manager=httpx_lifespan_manager)
    ```

    A manager registered twice runs once. Two sources publishing the same state
    key fail the startup, naming both.
    """
    # weak=False: the receiver object exists only in the signal's registry.
    asgi_lifespan.connect(_ManagerReceiver(context_manager), weak=False)


async def registered_managers() -> list[ManagerFactory]:
    """Return the managers the ``asgi_lifespan`` receivers provide, in order."""
    responses: list[tuple[Any, Any]] = await asgi_lifespan.asend(sender=None)
    return [manager for _, manager in responses if manager is not None]


def signal_receivers() -> bool:
    """Whether the project connected a receiver to any of the lifespan signals.

    Such a project may run without a ``LIFESPAN_DI`` setting, as it did with
    django-asgi-lifespan.
    """
    return any(
        signal.has_listeners()
        for signal in (asgi_lifespan, asgi_startup, asgi_shutdown)
    )
