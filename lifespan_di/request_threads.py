"""``LIFESPAN_DI["REQUEST_THREADS"]``: long-lived request threads, leased per request.

Django's ``ASGIHandler`` runs each request's thread-sensitive work (``request_started``
receivers, sync middleware and views, ``response.close()``, ``request_finished``) on
a thread of its own: it enters a new asgiref ``ThreadSensitiveContext`` per request,
which creates a single-thread executor and shuts it down afterwards. That churn is
most of what an async view costs, and it defeats persistent database connections:
Django's connections belong to their thread, which is retired after one request.

With ``REQUEST_THREADS = N`` the handler keeps up to N single-thread executors,
created on demand, and lends one to each request for its whole duration through
``ThreadSensitiveContext(executor=...)`` (asgiref 3.13; see "What lifespan_di relies
on" in docs/how-it-works.md). A request that finds all N lent gets a new thread, as
under Django. An executor goes back only once every call submitted to it has
finished, so that no two requests ever share a thread, even when one was cancelled
while its sync code ran.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import asgiref
from asgiref.sync import ThreadSensitiveContext
from django.db import connections

from lifespan_di.problems import Problem

__all__ = ["RequestThreads", "request_threads_problems", "supports_executors"]

T = TypeVar("T")

logger = logging.getLogger("lifespan_di")


def supports_executors() -> bool:
    """Whether this asgiref's ``ThreadSensitiveContext`` takes ``executor=``."""
    return "executor" in inspect.signature(ThreadSensitiveContext).parameters


def request_threads_problems(raw: dict[str, Any]) -> list[Problem]:
    """What is wrong with ``REQUEST_THREADS`` in the ``LIFESPAN_DI`` dict ``raw``."""
    value = raw.get("REQUEST_THREADS")
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return [
            Problem(
                "lifespan_di.E014",
                f"LIFESPAN_DI['REQUEST_THREADS'] is {value!r}: it is None (a new "
                "thread per request, as Django does) or a whole number of threads, "
                "at least 1.",
                "Start with twice the connections a worker serves at once "
                '(docs/configuration.md, "Request threads", says how to size it).',
            )
        ]
    if not supports_executors():
        return [
            Problem(
                "lifespan_di.E015",
                "LIFESPAN_DI['REQUEST_THREADS'] needs asgiref 3.13 or later, whose "
                "ThreadSensitiveContext takes an executor; this is asgiref "
                f"{asgiref.__version__}.",
                'Upgrade it (pip install "asgiref>=3.13"), or remove the setting.',
            )
        ]
    return []


class RequestThreads:
    """Up to ``size`` request threads, each lent to one request at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._created: list[_RequestThread] = []
        self._idle: list[_RequestThread] = []
        """Idle threads, the most recently used last: its connections are warm."""
        self.requests = 0
        """Requests lent a thread so far."""
        self.overflowed = 0
        """Requests of those that found all ``size`` threads lent."""
        self.in_flight = 0
        self.peak = 0
        """The most requests that held a thread at once: what ``size`` should cover."""

    def lease(self) -> _RequestThread:
        """Lend an idle thread, or a new one; past ``size``, a thread for one request.

        The latter (``pooled`` False) is what Django would create: ``release()``
        closes its database connections and ends it, so that none is left behind.
        Every thread lent goes back through ``release()``.
        """
        self.requests += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return self._idle.pop()
        except IndexError:
            pass
        if len(self._created) >= self.size:
            self.overflowed += 1
            return _RequestThread(None, "lifespan_di-overflow")
        name = f"lifespan_di-request-{len(self._created) + 1}"
        thread = _RequestThread(self._idle.append, name)
        self._created.append(thread)
        return thread

    def release(self, thread: _RequestThread) -> None:
        """Take back a thread whose request has ended (its sync calls may still run)."""
        self.in_flight -= 1
        if thread.pooled:
            thread.give_back()
        else:
            self._retire(thread)

    def _retire(self, thread: _RequestThread) -> None:
        """End a thread lent past ``size``, once its request has ended.

        It closes its database connections and exits after whatever the request
        left running there (a single worker); the request does not wait for it.
        """
        thread.submit(connections.close_all)
        thread.shutdown(wait=False)

    async def aclose(self) -> None:
        """Close each thread's database connections there, then end the threads.

        Called at lifespan shutdown, once the server has finished its requests: a
        thread still lent finishes what it runs first.
        """
        created, self._created, self._idle = self._created, [], []
        loop = asyncio.get_running_loop()
        for thread in created:
            await loop.run_in_executor(thread, connections.close_all)
            thread.shutdown(wait=False)
        if self.requests:
            logger.log(
                logging.INFO if self.overflowed else logging.DEBUG,
                "REQUEST_THREADS: %d of %d requests found all %d request threads "
                "lent and ran on a new thread each; at most %d held one at once.",
                self.overflowed,
                self.requests,
                self.size,
                self.peak,
            )


class _RequestThread(ThreadPoolExecutor):
    """A single-thread executor that goes back to its pool once it has no work.

    It counts the calls submitted and finished; ``give_back()`` returns it at once
    when they match, else the call that finishes last does.
    """

    def __init__(
        self, put_back: Callable[[_RequestThread], None] | None, name: str
    ) -> None:
        super().__init__(max_workers=1, thread_name_prefix=name)
        self.pooled = put_back is not None
        """Whether it goes back to the pool; else it serves one request."""
        self._put_back = put_back or _not_pooled
        self._lock = threading.Lock()
        self._pending = 0
        self._returning = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            self._pending += 1
        return super().submit(self._run, fn, args, kwargs)

    def _run(self, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            with self._lock:
                self._pending -= 1
                done = self._returning and not self._pending
                if done:
                    self._returning = False
            if done:
                self._put_back(self)

    def give_back(self) -> None:
        """Return to the pool now if idle, else once the last call has finished."""
        with self._lock:
            idle = not self._pending
            if not idle:
                self._returning = True
        if idle:
            self._put_back(self)


def _not_pooled(thread: _RequestThread) -> None:
    """Where an overflow thread would go back to: nowhere (``_retire()`` ends it)."""
