"""``Runtime``: the record of the lifespans running in this process, fork-safe.

``os.fork()`` copies the parent's memory, this record included, but only the thread
that forked: a child (Celery prefork, ``multiprocessing`` with fork, gunicorn
``--preload``) would see the parent's lifespans as running and hand out the parent's
connections, whose event loops do not run in the child. ``after_fork_in_child()``,
registered with ``os.register_at_fork``, gives the child an empty record and disowns
each inherited lifespan: the child starts its own, and never uses or closes the
parent's objects (closing them could end the parent's connections too).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Generic, Protocol, TypeVar

from lifespan_di.core.loop import running_loop
from lifespan_di.exceptions import AlreadyRunningError

__all__ = ["Runtime"]


class Claimant(Protocol):
    """What the record needs of a lifespan."""

    @property
    def container(self) -> object: ...

    @property
    def name(self) -> str: ...

    def disown(self) -> None: ...


L = TypeVar("L", bound=Claimant)


class Runtime(Generic[L]):
    """The container lifespans of this process.

    A lifespan *claims* its container from the start of startup to the end of
    shutdown, so one container never runs twice at once; it is *running* in between,
    and the newest running one is ``active``. ``loops`` holds the event loop each
    running lifespan started on: its loop-bound resources work only there.
    """

    __slots__ = ("_lock", "active", "claimed", "inherited", "loops", "running")

    def __init__(self) -> None:
        self.claimed: dict[int, L] = {}
        self.running: list[L] = []
        self.active: L | None = None
        self.loops: dict[int, asyncio.AbstractEventLoop] = {}
        self.inherited: list[L] = []
        """In a fork child, the parent's lifespans: kept, so nothing finalises them."""
        self._lock = threading.Lock()

    def claim(self, lifespan: L) -> None:
        """Reserve the lifespan's container, or raise if another lifespan holds it."""
        key = id(lifespan.container)
        with self._lock:
            if key not in self.claimed:
                self.claimed[key] = lifespan
                return
        msg = (
            f"Cannot start the resources of {lifespan.name!r}: its lifespan is "
            "already running in this process. Shut that lifespan down first, or "
            "use another container instance."
        )
        raise AlreadyRunningError(msg)

    def activate(self, lifespan: L) -> None:
        """Record that ``lifespan`` has started its resources, on the running loop."""
        with self._lock:
            self.running.append(lifespan)
            self.active = lifespan
            loop = running_loop()
            if loop is not None:
                self.loops[id(lifespan)] = loop

    def deactivate(self, lifespan: L) -> None:
        """Record that ``lifespan`` is shutting down; the previous one is active."""
        with self._lock:
            if lifespan in self.running:
                self.running.remove(lifespan)
            self.loops.pop(id(lifespan), None)
            self.active = self.running[-1] if self.running else None

    def release(self, lifespan: L) -> None:
        """Free the lifespan's container so that it can be started again."""
        self.deactivate(lifespan)
        with self._lock:
            if self.claimed.get(id(lifespan.container)) is lifespan:
                del self.claimed[id(lifespan.container)]

    def loop_of(self, lifespan: L) -> asyncio.AbstractEventLoop | None:
        """The event loop ``lifespan``'s resources were started on, while it runs."""
        return self.loops.get(id(lifespan))

    def after_fork_in_child(self) -> None:
        """Forget the parent's lifespans: none runs in a child until it starts one."""
        inherited = list(self.claimed.values())
        # The lock may have been held by a thread that does not exist in the child.
        self._lock = threading.Lock()
        self.claimed, self.running, self.active, self.loops = {}, [], None, {}
        for lifespan in inherited:
            lifespan.disown()
        self.inherited.extend(inherited)
