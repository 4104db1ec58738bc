"""Run the declared health checks of a running lifespan, concurrently and bounded.

A sync check runs in a worker thread, an async one on the event loop; each receives
its resource's started value. A check that raises, returns ``False`` or does not
finish within the timeout fails. Failing checks are logged once per change of
status, not on every probe.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import weakref
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Literal

from asgiref.sync import iscoroutinefunction

from lifespan_di.core.graph import first_names
from lifespan_di.core.lifespan import ContainerLifespan
from lifespan_di.exceptions import ConfigurationError
from lifespan_di.health.declared import Check, declared_checks

__all__ = ["CheckResult", "checked_resources", "run_checks"]

logger = logging.getLogger("lifespan_di.health")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one resource's health check.

    Attributes:
        status: ``"ok"``, ``"failed"`` (raised or returned ``False``) or
            ``"timeout"``.
        latency_ms: How long the check took (the timeout, for ``"timeout"``).
        detail: Why it failed; shown in the response body only when ``DEBUG`` is on.
        error: The exception the check raised, if any (logged with its traceback).
    """

    status: Literal["ok", "failed", "timeout"]
    latency_ms: float
    detail: str = ""
    error: BaseException | None = None


class _Check:
    """One declared check, and its run in progress, for one lifespan."""

    def __init__(self, name: str, function: Check) -> None:
        self.name = name
        self.function = function
        self.is_async = iscoroutinefunction(function) or iscoroutinefunction(
            getattr(function, "__call__", None)  # noqa: B004  (an async __call__)
        )
        self.running: asyncio.Future[CheckResult] | None = None
        self.last_status = "ok"

    def start(self, value: Any, timeout: float) -> asyncio.Future[CheckResult]:
        """Start a run, or join the one in progress.

        A sync check cannot be interrupted, so a hung one is joined rather than
        started again: repeated probes hold at most one worker thread per check,
        instead of filling the default executor that resource teardowns use.
        """
        loop = asyncio.get_running_loop()
        running = self.running
        if running is not None and not running.done() and running.get_loop() is loop:
            return running
        future: asyncio.Future[CheckResult]
        if self.is_async:
            future = loop.create_task(
                _call_async(self.function, value, timeout),
                name=f"health check {self.name}",
            )
        else:
            context = contextvars.copy_context()
            future = loop.run_in_executor(
                None, context.run, _call_sync, self.function, value
            )
        self.running = future
        return future

    def report(self, result: CheckResult) -> None:
        """Log a change of status: once when failing starts, once when it ends."""
        if result.status == self.last_status:
            return
        self.last_status = result.status
        if result.status == "ok":
            logger.info("Health check of resource %r passes again.", self.name)
        else:
            logger.warning(
                "Health check of resource %r failed: %s",
                self.name,
                result.detail,
                exc_info=result.error,
            )


@dataclass(frozen=True)
class _Plan:
    resources: tuple[str, ...]
    checks: tuple[_Check, ...]


_PLANS: weakref.WeakKeyDictionary[ContainerLifespan, _Plan] = (
    weakref.WeakKeyDictionary()
)


async def run_checks(
    lifespan: ContainerLifespan,
    *,
    timeout: float,  # noqa: ASYNC109  (a timeout is a result here, not an exception)
) -> dict[str, CheckResult]:
    """Run every declared check of a running lifespan concurrently; return results.

    Each check receives its resource's started value. A check that raises, returns
    ``False`` or does not finish within ``timeout`` seconds fails. Results are keyed
    by resource name, in declaration order.

    Raises:
        ConfigurationError: The container's ``HEALTH_CHECKS`` is invalid.
    """
    plan = _plan(lifespan)
    futures = {
        check: check.start(lifespan.state[check.name], timeout) for check in plan.checks
    }
    if futures:
        await asyncio.wait(futures.values(), timeout=timeout)
    results: dict[str, CheckResult] = {}
    for check, future in futures.items():
        results[check.name] = result = _outcome(future, timeout)
        check.report(result)
    return results


def checked_resources(lifespan: ContainerLifespan) -> tuple[str, ...]:
    """The named resources of ``lifespan``, in declaration order."""
    return _plan(lifespan).resources


def _plan(lifespan: ContainerLifespan) -> _Plan:
    plan = _PLANS.get(lifespan)
    if plan is None:
        checks, problems = declared_checks(lifespan.container)
        if problems:
            raise ConfigurationError(" ".join(problems))
        names = [
            name
            for name in first_names(lifespan.container).values()
            if f"{lifespan.name}.{name}" in lifespan.records
        ]
        plan = _PLANS[lifespan] = _Plan(
            tuple(names), tuple(_Check(name, fn) for name, fn in checks.items())
        )
    return plan


def _call_sync(function: Check, value: Any) -> CheckResult:
    began = perf_counter()
    try:
        result = function(value)
    except Exception as error:
        return _failed(began, error)
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        return CheckResult(
            "failed",
            _since(began),
            "the check returned an awaitable from a thread: declare it with async def",
        )
    return _passed(began, result)


async def _call_async(
    function: Check,
    value: Any,
    timeout: float,  # noqa: ASYNC109  (see the comment below)
) -> CheckResult:
    began = perf_counter()
    # Bounded here, not by the request: the run may be shared by several requests,
    # and must end even if the request that started it was cancelled.
    bound = asyncio.timeout(timeout)
    try:
        async with bound:
            result = function(value)
            if inspect.isawaitable(result):
                result = await result
    except TimeoutError as error:
        if bound.expired():
            return _timed_out(timeout)
        return _failed(began, error)
    except Exception as error:
        return _failed(began, error)
    return _passed(began, result)


def _outcome(future: asyncio.Future[CheckResult], timeout: float) -> CheckResult:
    if not future.done() or future.cancelled():
        return _timed_out(timeout)
    error = future.exception()
    if error is not None:  # a BaseException escaped the check's thread
        return CheckResult("failed", 0.0, repr(error), error)
    return future.result()


def _passed(began: float, result: object) -> CheckResult:
    if result is False:
        return CheckResult("failed", _since(began), "the check returned False")
    return CheckResult("ok", _since(began))


def _failed(began: float, error: BaseException) -> CheckResult:
    return CheckResult("failed", _since(began), f"the check raised {error!r}", error)


def _timed_out(timeout: float) -> CheckResult:
    detail = f"the check did not finish within HEALTH_CHECK_TIMEOUT ({timeout} s)"
    return CheckResult("timeout", timeout * 1000, detail)


def _since(began: float) -> float:
    return (perf_counter() - began) * 1000
