"""Liveness and readiness endpoints, with per-resource health checks.

``live/`` answers 200 without touching a resource. ``ready/`` answers 200 only while
a lifespan runs (startup complete, shutdown not begun) and every check declared in
the container's ``HEALTH_CHECKS`` passes; all checks run concurrently under
``LIFESPAN_DI['HEALTH_CHECK_TIMEOUT']``. See docs/health.md.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Literal

from asgiref.sync import iscoroutinefunction
from dependency_injector import containers, providers
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from lifespan_di.conf import (
    DEFAULT_HEALTH_CHECK_TIMEOUT,
    container_configured,
    get_settings,
)
from lifespan_di.engine import LIFESPAN_STATE_KEY, ContainerLifespan
from lifespan_di.exceptions import ConfigurationError
from lifespan_di.graph import container_name, named_providers
from lifespan_di.runtime import RUNTIME

__all__ = [
    "HEALTH_CHECKS",
    "CheckResult",
    "health_check_problems",
    "live",
    "ready",
    "run_health_checks",
]

logger = logging.getLogger("lifespan_di.health")

HEALTH_CHECKS = "HEALTH_CHECKS"
"""The container attribute mapping resource names to their checks."""

Check = Callable[[Any], object]
"""A callable or coroutine function receiving the started value; ``False`` fails."""


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


async def run_health_checks(
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


def health_check_problems(container: containers.Container) -> list[str]:
    """Describe what is wrong with the container's ``HEALTH_CHECKS``, if anything."""
    return _declared(container)[1]


@never_cache
@require_safe
async def live(request: HttpRequest) -> JsonResponse:
    """Answer 200 while the process serves requests; touch no resource."""
    return JsonResponse({"status": "alive"})


@never_cache
@require_safe
async def ready(request: HttpRequest) -> JsonResponse:
    """Answer 200 if the lifespan runs and every health check passes, else 503.

    The body lists each named resource: ``"started"`` when it has no check,
    otherwise the check's status and latency; with ``DEBUG`` on, why it failed.
    """
    lifespan = _lifespan_of(request)
    if lifespan is None:
        return _answer("not running", {})
    results = await run_health_checks(lifespan, timeout=_timeout())
    if not lifespan.running:  # shutdown began while the checks ran
        return _answer("not running", {})
    debug = settings.DEBUG
    resources: dict[str, dict[str, object]] = {}
    for name in _plan(lifespan).resources:
        result = results.get(name)
        if result is None:
            resources[name] = {"status": "started"}
            continue
        resources[name] = {
            "status": result.status,
            "latency_ms": round(result.latency_ms, 2),
        }
        if debug and result.status != "ok":
            resources[name]["error"] = result.detail
    return _answer("running", resources)


def _answer(lifespan: str, resources: dict[str, dict[str, object]]) -> JsonResponse:
    ok = lifespan == "running" and all(
        entry["status"] in ("ok", "started") for entry in resources.values()
    )
    body = {
        "status": "ready" if ok else "not ready",
        "lifespan": lifespan,
        "resources": resources,
    }
    response = JsonResponse(body, status=200 if ok else 503)
    if not ok:
        # Django logs every 5xx at ERROR; a probe every few seconds would flood the
        # logs. Failing checks are logged once per change instead (_Check.report).
        response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _lifespan_of(request: HttpRequest) -> ContainerLifespan | None:
    """The running lifespan of the application serving ``request``, if any."""
    scope = getattr(request, "scope", None)
    server_state = scope.get("state") if scope is not None else None
    if server_state is not None and LIFESPAN_STATE_KEY in server_state:
        lifespan = server_state[LIFESPAN_STATE_KEY]
        return lifespan if lifespan.running else None
    return RUNTIME.active


def _timeout() -> float:
    if not container_configured():
        return DEFAULT_HEALTH_CHECK_TIMEOUT
    return get_settings().health_check_timeout


def _plan(lifespan: ContainerLifespan) -> _Plan:
    plan = _PLANS.get(lifespan)
    if plan is None:
        checks, problems = _declared(lifespan.container)
        if problems:
            raise ConfigurationError(" ".join(problems))
        names = [
            name
            for name in _primary_names(lifespan.container).values()
            if f"{lifespan.name}.{name}" in lifespan.records
        ]
        plan = _PLANS[lifespan] = _Plan(
            tuple(names), tuple(_Check(name, fn) for name, fn in checks.items())
        )
    return plan


def _declared(container: containers.Container) -> tuple[dict[str, Check], list[str]]:
    """Return the checks by primary resource name, and the problems found."""
    primary = _primary_names(container)
    checks: dict[str, Check] = {}
    owners: dict[str, str] = {}
    problems: list[str] = []
    for owner, scope in _declaring_containers(container):
        declared = _attribute(scope)
        if declared is None:
            continue
        where = f"{owner}.{HEALTH_CHECKS}"
        if not isinstance(declared, Mapping):
            problems.append(
                f"Cannot use {where}: it is a {type(declared).__name__}, not a "
                "mapping. Declare it as {'db': ping_db}, resource names to checks."
            )
            continue
        names = dict(named_providers(scope))
        for key, function in declared.items():
            problem = _problem(where, key, function, names.get(key), names)
            if problem is not None:
                problems.append(problem)
                continue
            name = primary[id(names[key])]
            if name in owners:
                problems.append(
                    f"Cannot use the check of {key!r} in {where}: resource {name!r} "
                    f"already has one in {owners[name]}. Keep one of them."
                )
                continue
            owners[name] = where
            checks[name] = function
    return checks, problems


def _problem(
    where: str,
    key: object,
    function: object,
    provider: object,
    names: Mapping[str, object],
) -> str | None:
    if not isinstance(key, str) or provider is None:
        resources = [
            name
            for name, candidate in names.items()
            if isinstance(candidate, providers.Resource)
        ]
        return (
            f"Cannot use the health check {key!r} of {where}: it names no provider. "
            "Use the name of one of its resources: "
            f"{', '.join(map(repr, resources)) or 'it has none'}."
        )
    if not isinstance(provider, providers.Resource):
        return (
            f"Cannot use the health check {key!r} of {where}: it is a "
            f"{type(provider).__name__}, not a Resource. Only app-scoped resources "
            "have a started value to check."
        )
    if not callable(function):
        return (
            f"Cannot use the health check {key!r} of {where}: {function!r} is not "
            "callable. Give a function or coroutine function that receives the "
            "started resource."
        )
    return None


def _declaring_containers(
    container: containers.Container,
) -> Iterator[tuple[str, containers.Container]]:
    """Yield the container and every nested one, each with its display name."""
    yield container_name(container), container
    for provider in container.providers.values():
        if isinstance(provider, providers.Container):
            yield from _declaring_containers(provider.container)


def _attribute(container: containers.Container) -> object | None:
    # A container instance does not carry its declarative class's plain attributes.
    declared = getattr(container, HEALTH_CHECKS, None)
    if declared is None:
        parent = getattr(container, "declarative_parent", None)
        declared = getattr(parent, HEALTH_CHECKS, None)
    return declared


def _primary_names(container: containers.Container) -> dict[int, str]:
    """Each resource's first name, as the engine names it in its records and logs."""
    names: dict[int, str] = {}
    for name, provider in named_providers(container):
        if isinstance(provider, providers.Resource):
            names.setdefault(id(provider), name)
    return names


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
