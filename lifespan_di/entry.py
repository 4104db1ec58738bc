"""``Entry``: one request resource of a request scope, from its opening to its closing.

The first use in a request opens it; a use in another task or thread of the same
request meanwhile waits for that opening instead of opening a second instance.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from lifespan_di.core import forms

__all__ = ["Entry"]

# Guards Entry.waiter; held for a few instructions at a time.
_WAITERS = threading.Lock()


class Entry:
    """One request resource of a scope: its value once ready, and how to close it."""

    __slots__ = (
        "done",
        "error",
        "handle",
        "in_thread",
        "kind",
        "loop",
        "name",
        "value",
        "view",
        "waiter",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.done = False
        """Whether opening it ended, with a value or an error."""
        self.value: Any = None
        self.error: BaseException | None = None
        self.kind: forms.Kind | None = None
        self.handle: Any = None
        self.in_thread = False
        """Opened in a worker thread (a sync view): closed in that thread too."""
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop an async form was opened on: closed on it too, while it runs."""
        self.view = False
        """A ``ViewResource``'s: closed when the view returns."""
        # Created only when a second use waits for the first one to open it, which
        # is rare: most requests never pay for an Event.
        self.waiter: threading.Event | None = None

    def wait(self) -> None:
        """Block until opening it ended, in another thread or task."""
        with _WAITERS:
            if self.waiter is None:
                self.waiter = threading.Event()
            waiter = self.waiter
        # The opener sets done before it reads waiter, and this side set waiter
        # before it reads done: one of the two always sees the other.
        if not self.done:
            waiter.wait()

    def finish(self) -> None:
        """Mark opening as ended and wake whoever waits for it."""
        self.done = True
        waiter = self.waiter
        if waiter is not None:
            waiter.set()
