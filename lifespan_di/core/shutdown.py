"""Stop resources in reverse dependency order: every teardown attempted, each bounded.

A resource stops after every resource that uses it; independent ones stop
concurrently. A teardown that raises or outlasts ``SHUTDOWN_TIMEOUT`` is recorded as
failed and stops nothing else from running: dependency-injector's own
``shutdown_resources()`` stops at the first teardown that raises (see "What
lifespan_di relies on" in docs/how-it-works.md).

That holds for whatever a teardown raises. A ``CancelledError`` while the shutdown
itself is not being cancelled is the resource's own failure (the common
``task.cancel(); await task`` slip); a ``KeyboardInterrupt`` or ``SystemExit`` is
recorded too, and handed back to be raised once every teardown was attempted.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from dependency_injector import providers

from lifespan_di.core import forms
from lifespan_di.core.graph import ResourceNode
from lifespan_di.core.loop import cancelling, consume_outcome, in_daemon_thread
from lifespan_di.core.report import ResourceRecord, TeardownRaised

__all__ = ["Failures", "Stopped", "stop_all"]

logger = logging.getLogger("lifespan_di")

Failures = list[tuple[ResourceNode, Exception]]


@dataclass
class Stopped:
    """The outcome of ``stop_all``."""

    ended: list[ResourceNode]
    """The nodes in the order their teardown ended."""
    failures: Failures
    """The teardowns that failed, each with what it raised (wrapped in
    ``TeardownRaised`` where that was not an ``Exception``)."""
    interrupt: KeyboardInterrupt | SystemExit | None = None
    """The first interrupt a teardown raised, for the caller to raise in the end."""


async def stop_all(
    nodes: list[ResourceNode],
    records: Mapping[str, ResourceRecord],
    *,
    targets: Mapping[ResourceNode, providers.Provider[Any]],
    shutdown_timeout: float | None,
) -> Stopped:
    """Stop ``nodes`` (given newest first), each after the resources that use it.

    ``targets`` maps a node to the provider that started it, when an override did.
    Only a cancellation of the calling task stops it early (cancelling the
    teardowns still running).
    """
    stopped = {node: asyncio.Event() for node in nodes}
    outcome = Stopped([], [])

    async def stop_after_dependents(node: ResourceNode) -> None:
        try:
            for dependent in node.dependents:
                if dependent in stopped:
                    await stopped[dependent].wait()
            target = targets.get(node, node.provider)
            await _stop_one(node, target, records[node.path], shutdown_timeout)
        except _Failed as failed:
            outcome.failures.append((node, failed.error))
            if isinstance(failed.raised, KeyboardInterrupt | SystemExit):
                outcome.interrupt = outcome.interrupt or failed.raised
        finally:
            outcome.ended.append(node)
            stopped[node].set()

    await asyncio.gather(
        *(
            asyncio.create_task(stop_after_dependents(node), name=f"stop {node.path}")
            for node in nodes
        )
    )
    return outcome


class _Failed(Exception):
    """A teardown failed: ``raised`` is what it raised, ``error`` its failure."""

    def __init__(self, raised: BaseException) -> None:
        self.raised = raised
        self.error = (
            raised if isinstance(raised, Exception) else TeardownRaised.wrap(raised)
        )


async def _stop_one(
    node: ResourceNode,
    target: providers.Provider[Any],
    record: ResourceRecord,
    shutdown_timeout: float | None,
) -> None:
    record.status = "stopping"
    began = perf_counter()
    try:
        if isinstance(target, providers.Resource):
            await _bounded_teardown(node, target, shutdown_timeout)
    except BaseException as error:
        if isinstance(error, asyncio.CancelledError) and cancelling():
            raise
        record.status = "stop failed"
        record.error = error
        error.add_note(f"Raised while shutting down resource {node.path!r}.")
        logger.error(  # noqa: TRY400 - the error may be a BaseException out of a task
            "Resource %s failed to shut down.", node.path, exc_info=error
        )
        raise _Failed(error) from None
    record.status = "stopped"
    record.stop_seconds = perf_counter() - began
    logger.info(
        "Stopped resource %s in %.1f ms.", node.path, record.stop_seconds * 1000
    )


async def _bounded_teardown(
    node: ResourceNode,
    target: providers.Resource[Any],
    shutdown_timeout: float | None,
) -> None:
    task = asyncio.ensure_future(_interrupt_as_value(_teardown(target, node.path)))
    try:
        done, _ = await asyncio.wait({task}, timeout=shutdown_timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        interrupt = task.result()
        if interrupt is not None:
            raise interrupt
        return
    # Not awaited after cancel: a teardown that ignores cancellation must not hold
    # the others. Its eventual outcome is consumed, not reported twice.
    task.cancel()
    task.add_done_callback(consume_outcome)
    msg = (
        f"Resource {node.path!r} did not shut down within SHUTDOWN_TIMEOUT "
        f"({shutdown_timeout} s)."
    )
    raise TimeoutError(msg)


async def _teardown(target: providers.Resource[Any], path: str) -> None:
    if forms.starts_in_thread(target.provides):
        # A thread cannot be stopped: on timeout the wait ends, the thread goes on.
        result = await in_daemon_thread(target.shutdown, f"lifespan_di stop {path}")
    else:
        result = target.shutdown()
    # A plain function's resource may be async after all (see core/starts.py).
    if inspect.isawaitable(result):
        await result


async def _interrupt_as_value(
    teardown: Awaitable[Any],
) -> KeyboardInterrupt | SystemExit | None:
    """Await ``teardown``, returning an interrupt it raises instead of raising it.

    A task that raises ``KeyboardInterrupt`` or ``SystemExit`` re-raises it out of
    the event loop, which would end the shutdown then and there.
    """
    try:
        await teardown
    except (KeyboardInterrupt, SystemExit) as interrupt:
        return interrupt
    return None
