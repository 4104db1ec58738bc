"""Lifespan managers: async context managers whose yielded mapping joins the state.

The registration API of django-asgi-lifespan. A registered manager is started and
stopped with the container's resources: concurrently, rolled back if anything fails
to start, shut down in reverse order, bounded by the same timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lifespan_di.engine import ManagerFactory
from lifespan_di.signals import asgi_lifespan

__all__ = ["register_lifespan_manager", "registered_managers"]


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

    Registering the same manager twice, or two sources publishing the same state
    key, fails the startup naming both.
    """
    # weak=False: the receiver object exists only in the signal's registry.
    asgi_lifespan.connect(_ManagerReceiver(context_manager), weak=False)


async def registered_managers() -> list[ManagerFactory]:
    """Return the managers the ``asgi_lifespan`` receivers provide, in order."""
    responses: list[tuple[Any, Any]] = await asgi_lifespan.asend(sender=None)
    return [manager for _, manager in responses if manager is not None]
