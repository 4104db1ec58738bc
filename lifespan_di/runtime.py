"""Which container lifespans are running in this process.

ContextVars set during lifespan are not visible in requests on any server, and
granian empties the server's state dict before shutdown (FACTS.md §1), so the
process keeps its own record. ``inject``, ``get_container()`` and the middleware's
fallback read ``RUNTIME.active`` on every call: it is a plain attribute so that the
hot path costs one lookup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifespan_di.exceptions import AlreadyRunningError

if TYPE_CHECKING:
    from lifespan_di.engine import ContainerLifespan

__all__ = ["RUNTIME", "Runtime", "running_lifespan"]


class Runtime:
    """The container lifespans of this process.

    A lifespan *claims* its container when its startup begins and releases it when
    its shutdown ends, so one container never runs twice at once. It is *running*
    between startup complete and the start of shutdown; the newest running one is
    ``active``.
    """

    __slots__ = ("active", "claimed", "running")

    def __init__(self) -> None:
        self.claimed: dict[int, ContainerLifespan] = {}
        self.running: list[ContainerLifespan] = []
        self.active: ContainerLifespan | None = None

    def claim(self, lifespan: ContainerLifespan) -> None:
        """Reserve the lifespan's container, or raise if another lifespan holds it."""
        key = id(lifespan.container)
        if key in self.claimed:
            msg = (
                f"Cannot start the resources of {lifespan.name!r}: its lifespan is "
                "already running in this process. Shut that lifespan down first, or "
                "use another container instance."
            )
            raise AlreadyRunningError(msg)
        self.claimed[key] = lifespan

    def running_for(self, container: object) -> ContainerLifespan | None:
        """Return the running lifespan of ``container``, if any."""
        lifespan = self.claimed.get(id(container))
        return lifespan if lifespan is not None and lifespan.running else None

    def activate(self, lifespan: ContainerLifespan) -> None:
        """Record that ``lifespan`` has started its resources."""
        self.running.append(lifespan)
        self.active = lifespan

    def deactivate(self, lifespan: ContainerLifespan) -> None:
        """Record that ``lifespan`` is shutting down; the previous one is active."""
        if lifespan in self.running:
            self.running.remove(lifespan)
        self.active = self.running[-1] if self.running else None

    def release(self, lifespan: ContainerLifespan) -> None:
        """Free the lifespan's container so that it can be started again."""
        self.deactivate(lifespan)
        if self.claimed.get(id(lifespan.container)) is lifespan:
            del self.claimed[id(lifespan.container)]


RUNTIME = Runtime()


def running_lifespan(container: object | None = None) -> ContainerLifespan | None:
    """Return the lifespan running in this process, or None.

    With ``container``, that container's lifespan; otherwise the newest one (the
    server's, in a served process). Its ``records`` say, per resource, its status,
    dependencies and start and stop times; its ``state`` holds the started values.
    """
    if container is None:
        return RUNTIME.active
    return RUNTIME.running_for(container)
