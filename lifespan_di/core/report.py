"""What happened to each resource of a lifespan, and the errors that say so."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lifespan_di.core.graph import ResourceNode
from lifespan_di.exceptions import ShutdownError, StartupError

__all__ = [
    "ResourceRecord",
    "Status",
    "publish_failure",
    "shutdown_failure",
    "startup_failure",
]

Status = Literal[
    "pending",
    "starting",
    "started",
    "failed",
    "cancelled",
    "stopping",
    "stopped",
    "stop failed",
]

StopErrors = Sequence[tuple[ResourceNode, Exception]]


@dataclass
class ResourceRecord:
    """What happened to one resource during a lifespan (for logs and reports)."""

    path: str
    dependencies: tuple[str, ...]
    status: Status = "pending"
    start_seconds: float | None = None
    stop_seconds: float | None = None
    error: BaseException | None = None


def startup_failure(
    failed: Mapping[ResourceNode, BaseException | None],
    stopped: Sequence[str],
    stop_errors: StopErrors,
    leaked: Sequence[ResourceNode],
    *,
    startup_timeout: float | None,
    shutdown_timeout: float | None,
) -> StartupError:
    """Describe a failed startup after its rollback.

    Args:
        failed: The resources that failed, in declaration order, each with what it
            raised; ``None`` for one still starting when ``startup_timeout`` passed.
        stopped: The resources shut down by the rollback, in stop order.
        stop_errors: The teardowns that failed during the rollback.
        leaked: Resources still starting in a worker thread after the rollback.
    """
    nodes = list(failed)
    first = nodes[0]
    cause = failed[first]
    if cause is None:
        names = ", ".join(repr(node.path) for node in nodes)
        noun = "resource" if len(nodes) == 1 else "resources"
        msg = (
            f"Cannot start {noun} {names}: startup did not finish within "
            f"STARTUP_TIMEOUT ({startup_timeout} s)."
        )
        cause = TimeoutError(msg)
    else:
        msg = f"Cannot start resource {first.path!r}: it raised {cause!r}."
        others = ", ".join(f"{node.path!r} ({failed[node]!r})" for node in nodes[1:])
        if others:
            msg += f" At the same time, these failed too: {others}."
    if stopped:
        msg += f" Resources started before it were shut down: {', '.join(stopped)}."
    else:
        msg += " No other resource had started."
    msg += _stop_errors(stop_errors)
    for node in leaked:
        msg += (
            f" {node.path!r} was still starting in a worker thread after "
            f"SHUTDOWN_TIMEOUT ({shutdown_timeout} s) and may stay open."
        )
    error = StartupError(msg, resource=first.path, rolled_back=stopped)
    error.__cause__ = cause
    return error


def publish_failure(
    reason: str, node: ResourceNode, stopped: Sequence[str], stop_errors: StopErrors
) -> StartupError:
    """Describe a startup whose state could not be published, after its rollback."""
    msg = f"{reason} The started resources were shut down: {', '.join(stopped)}."
    msg += _stop_errors(stop_errors)
    return StartupError(msg, resource=node.path, rolled_back=stopped)


def shutdown_failure(name: str, errors: StopErrors, total: int) -> ShutdownError:
    """Describe a shutdown in which some teardowns failed (all were attempted)."""
    failed = ", ".join(f"{node.path!r} ({error!r})" for node, error in errors)
    msg = (
        f"Cannot shut down {name} cleanly: {len(errors)} of {total} resources "
        f"failed to stop: {failed}. Every other resource was shut down."
    )
    group = ShutdownError(msg, [error for _, error in errors])
    group.resources = tuple(node.path for node, _ in errors)
    return group


def _stop_errors(stop_errors: StopErrors) -> str:
    return "".join(
        f" Shutting down {node.path!r} failed too: {error!r}."
        for node, error in stop_errors
    )
