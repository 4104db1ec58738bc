"""Celery workers: the container's lifespan once per worker process, a scope per task.

``install(app)`` connects receivers to Celery's signals (Celery 5.5 to 5.7, see
"Celery" in docs/outside-requests.md):

- prefork pool: each child process starts the lifespan after the fork
  (``worker_process_init``) and shuts it down as it exits (``worker_process_shutdown``,
  sent by billiard in the child whether it leaves through a warm shutdown, ``celery
  control shutdown`` or ``--max-tasks-per-child``). The parent starts nothing: what it
  started would be inherited by every child, event loops and sockets included.
- solo and threads pools: the worker's own process starts it (``worker_init``, before
  the pool exists) and shuts it down once the pool has finished its tasks
  (``worker_shutdown``).
- each task runs in a request scope, opened by ``task_prerun`` and closed by
  ``task_postrun`` with the exception the task raised, a ``Retry`` included.

Celery logs and swallows what a receiver raises (``Exception``), so a lifespan that
cannot start stops the worker here: the worker's process raises ``SystemExit``; a
prefork child exits and asks its parent for a warm shutdown, and the parent exits
with status 1.
"""

from __future__ import annotations

import logging
import mmap
import os
import signal
import sys
import threading
from typing import Any

from celery import Celery, Task, signals, states
from celery.concurrency import get_implementation
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.concurrency.solo import TaskPool as SoloPool
from celery.concurrency.thread import TaskPool as ThreadsPool

from lifespan_di.exceptions import ShutdownError
from lifespan_di.scope import RequestScope, enter_scope, exit_scope
from lifespan_di.standalone import Lifespan

__all__ = ["install"]

logger = logging.getLogger("lifespan_di")

EX_FAILURE = 1
"""The status a worker exits with when its resources failed (Celery's own)."""

# The exception a task left with is passed to the scope's teardowns in these
# states; in SUCCESS, an exception is a value the task returned.
_RAISED = frozenset({states.FAILURE, states.RETRY, states.REJECTED, states.IGNORED})


def install(app: Celery) -> None:
    """Run the configured container's lifespan in each worker process of ``app``.

    Call it once, in the module that creates the Celery app:

    ```python
    app = Celery("proj")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.autodiscover_tasks()
    lifespan_di.celery.install(app)
    ```

    Each worker process starts the resources once, before it runs a task, and shuts
    them down when it exits: each child of the prefork pool, or the worker itself
    with ``--pool=solo`` or ``--pool=threads``. Every task runs in a request scope,
    so ``inject`` and request resources work in tasks as in views. A worker whose
    resources fail to start exits with status 1, the resource named in its log.

    Calling it again for the same app does nothing.
    """
    if id(app) not in _INSTALLED:
        _INSTALLED[id(app)] = _Worker(app)
    if not _TASK_SCOPES.apps:
        # weak=False: bound methods of an object only this module holds.
        signals.task_prerun.connect(_TASK_SCOPES.on_prerun, weak=False)
        signals.task_postrun.connect(_TASK_SCOPES.on_postrun, weak=False)
    _TASK_SCOPES.apps.add(app.main)


class _Worker:
    """The receivers for one Celery app, and what they share within a process."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.main_pid: int | None = None
        """The worker's own process, once ``worker_init`` ran in it."""
        self.forks = False
        self.block: Lifespan | None = None
        self.block_pid: int | None = None
        self.children_failed = mmap.mmap(-1, 1)
        """Set by a prefork child whose resources failed; shared across the fork."""
        # weak=False: bound methods of an object only this module holds.
        for receiver, signal_ in (
            (self.on_worker_init, signals.worker_init),
            (self.on_process_init, signals.worker_process_init),
            (self.on_process_shutdown, signals.worker_process_shutdown),
            (self.on_worker_shutdown, signals.worker_shutdown),
        ):
            signal_.connect(receiver, weak=False)

    # --- the worker's process -----------------------------------------------------

    def on_worker_init(self, sender: Any, **kwargs: Any) -> None:
        if sender.app is not self.app:
            return
        self.main_pid = os.getpid()
        pool = get_implementation(sender.pool_cls)
        if issubclass(pool, PreforkPool):
            self.forks = True
            return
        if not issubclass(pool, SoloPool | ThreadsPool):
            logger.critical(
                "Cannot run the resources of this worker: its pool %s.%s is not "
                "supported. lifespan_di runs them in Celery's prefork, solo and "
                "threads pools; use one of those.",
                pool.__module__,
                pool.__qualname__,
            )
            raise SystemExit(EX_FAILURE)
        if not self.start("the worker"):
            raise SystemExit(EX_FAILURE)

    def on_worker_shutdown(self, sender: Any, **kwargs: Any) -> None:
        if sender.app is not self.app:
            return
        if self.forks and self.children_failed[0]:
            logger.critical(
                "The worker stopped because a worker process could not start its "
                "resources (logged above)."
            )
            sender.exitcode = EX_FAILURE
        elif not self.stop():
            sender.exitcode = EX_FAILURE

    # --- a prefork child ------------------------------------------------------------

    def on_process_init(self, **kwargs: Any) -> None:
        # Solo sends this signal too, in the worker's own process: started already.
        # A child billiard spawned rather than forked (``worker_pool_start_method``,
        # macOS) is a new interpreter where worker_init never ran: main_pid is None.
        if os.getpid() == self.main_pid or (self.main_pid and not self.forks):
            return
        if self.start(f"worker process {os.getpid()}"):
            return
        self.children_failed[0] = 1
        os.kill(os.getppid(), signal.SIGTERM)  # a warm shutdown: see the module
        raise SystemExit(EX_FAILURE)

    def on_process_shutdown(self, **kwargs: Any) -> None:
        self.stop()

    # --- the lifespan -------------------------------------------------------------

    def start(self, where: str) -> bool:
        """Start the resources in this process; log and return False if they fail."""
        block = Lifespan()
        try:
            block.__enter__()
        except Exception:
            logger.critical("Cannot start the resources of %s.", where, exc_info=True)
            return False
        self.block, self.block_pid = block, os.getpid()
        return True

    def stop(self) -> bool:
        """Shut down what this process started; log and return False on failure."""
        block, self.block = self.block, None
        if block is None or self.block_pid != os.getpid():
            return True
        try:
            block.__exit__(None, None, None)
        except ShutdownError:
            logger.exception(
                "Shutting down the resources of process %s failed.", os.getpid()
            )
            return False
        return True


class _TaskScopes:
    """A request scope around each task of the installed apps."""

    def __init__(self) -> None:
        self.apps: set[str | None] = set()
        """The installed apps' names: a spawned child runs tasks of an unpickled
        copy of its app, which only the name identifies."""
        self.opened: dict[tuple[int, str], tuple[RequestScope, Any]] = {}

    def on_prerun(self, task_id: str, task: Task[Any, Any], **kwargs: Any) -> None:
        if task.app.main in self.apps:
            self.opened[threading.get_ident(), task_id] = enter_scope()

    def on_postrun(
        self,
        task_id: str,
        retval: Any = None,
        state: str | None = None,
        **kwargs: Any,
    ) -> None:
        opened = self.opened.pop((threading.get_ident(), task_id), None)
        if opened is None:
            return
        scope, token = opened
        exit_scope(token)
        if state in _RAISED and isinstance(retval, BaseException):
            raised: BaseException | None = retval
        else:
            # No state: a BaseException (SystemExit, an interrupt) is on its way out.
            raised = sys.exc_info()[1] if state is None else None
        scope.close(raised)  # failures are logged; the task's outcome is stored


_INSTALLED: dict[int, _Worker] = {}
_TASK_SCOPES = _TaskScopes()
