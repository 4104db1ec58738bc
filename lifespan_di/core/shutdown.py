"""Stop resources in reverse dependency order: every teardown attempted, each bounded.

A resource stops after every resource that uses it; independent ones stop
concurrently. A teardown that raises or outlasts ``SHUTDOWN_TIMEOUT`` is recorded as
failed and stops nothing else from running: dependency-injector's own
``shutdown_resources()`` stops at the first teardown that raises (see "What
lifespan_di relies on" in docs/how-it-works.md).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Mapping
from time import perf_counter
from typing import Any

from dependency_injector import providers

from lifespan_di.core import forms
from lifespan_di.core.graph import ResourceNode
from lifespan_di.core.report import ResourceRecord

__all__ = ["Failures", "stop_all"]

logger = logging.getLogger("lifespan_di")

Failures = list[tuple[ResourceNode, Exception]]


async def stop_all(
    nodes: list[ResourceNode],
    records: Mapping[str, ResourceRecord],
    *,
    targets: Mapping[ResourceNode, providers.Provider[Any]],
    shutdown_timeout: float | None,
) -> tuple[list[ResourceNode], Failures]:
    """Stop ``nodes`` (given newest first), each after the resources that use it.

    ``targets`` maps a node to the provider that started it, when an override did.
    Returns the nodes in the order their teardown ended, and the failures.
    """
    stopped = {node: asyncio.Event() for node in nodes}
    ended: list[ResourceNode] = []
    errors: Failures = []

    async def stop_after_dependents(node: ResourceNode) -> None:
        try:
            for dependent in node.dependents:
                if dependent in stopped:
                    await stopped[dependent].wait()
            target = targets.get(node, node.provider)
            await _stop_one(node, target, records[node.path], shutdown_timeout)
        except Exception as error:
            errors.append((node, error))
        finally:
            ended.append(node)
            stopped[node].set()

    await asyncio.gather(
        *(
            asyncio.create_task(stop_after_dependents(node), name=f"stop {node.path}")
            for node in nodes
        )
    )
    return ended, errors


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
    except Exception as error:
        record.status = "stop failed"
        record.error = error
        error.add_note(f"Raised while shutting down resource {node.path!r}.")
        logger.exception("Resource %s failed to shut down.", node.path)
        raise
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
    teardown: Awaitable[Any]
    if forms.starts_in_thread(target.provides):
        context = contextvars.copy_context()
        future = asyncio.get_running_loop().run_in_executor(
            None, context.run, target.shutdown
        )
        # Shielded: on timeout stop waiting, the thread itself cannot be stopped.
        teardown = asyncio.shield(future)
    else:
        result = target.shutdown()
        if not inspect.isawaitable(result):
            return
        teardown = result
    task = asyncio.ensure_future(teardown)
    try:
        done, _ = await asyncio.wait({task}, timeout=shutdown_timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        task.result()
        return
    # Not awaited after cancel: a teardown that ignores cancellation must not hold
    # the others. Its eventual outcome is consumed, not reported twice.
    task.cancel()
    task.add_done_callback(_consume_outcome)
    msg = (
        f"Resource {node.path!r} did not shut down within SHUTDOWN_TIMEOUT "
        f"({shutdown_timeout} s)."
    )
    raise TimeoutError(msg)


def _consume_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
