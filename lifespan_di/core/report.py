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
    "TeardownRaised",
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


class TeardownRaised(RuntimeError):
    """A teardown raised a ``BaseException`` that is not an ``Exception``.

    It stands in for it (its ``__cause__``) where only an ``Exception`` fits, as in
    ``ShutdownError``: a ``CancelledError`` the resource raised itself, a
    ``KeyboardInterrupt`` or a ``SystemExit``.
    """

    @classmethod
    def wrap(cls, raised: BaseException) -> TeardownRaised:
        """Return the stand-in for ``raised``."""
        error = cls(f"The teardown raised {raised!r}.")
        error.__cause__ = raised
        return error


def startup_failure(
    failed: Mapping[ResourceNode, BaseException | None],
    stopped: Sequence[str],
    stop_errors: StopErrors,
    abandoned: Sequence[ResourceNode],
    *,
    late: Sequence[ResourceNode],
    grace: float,
    startup_timeout: float | None,
) -> StartupError:
    """Describe a failed startup after its rollback.

    Args:
        failed: The resources that failed, in declaration order, each with what it
            raised; ``None`` for one to blame for the ``startup_timeout``.
        stopped: The resources shut down by the rollback, in stop order.
        stop_errors: The teardowns that failed during the rollback.
        abandoned: Resources still starting after the rollback's ``grace``: each
            is shut down if its start ever finishes.
        late: Resources whose start ended after the deadline: they held the loop.
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
        if late:
            msg += (
                f" {names} kept the event loop busy past the deadline, so nothing "
                "else could run: move blocking calls out of async code (or make "
                "the resource a sync function, started in a worker thread)."
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
    for node in abandoned:
        msg += (
            f" {node.path!r} was still starting {grace} s after it was cancelled: "
            "it may stay open until its start finishes, and is shut down then."
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
    failed = ", ".join(f"{node.path!r} ({_said(error)})" for node, error in errors)
    msg = (
        f"Cannot shut down {name} cleanly: {len(errors)} of {total} resources "
        f"failed to stop: {failed}. Every other resource was shut down."
    )
    group = ShutdownError(msg, [error for _, error in errors])
    group.resources = tuple(node.path for node, _ in errors)
    return group


def _stop_errors(stop_errors: StopErrors) -> str:
    return "".join(
        f" Shutting down {node.path!r} failed too: {_said(error)}."
        for node, error in stop_errors
    )


def _said(error: Exception) -> str:
    """What a teardown raised, as the user wrote it."""
    return repr(error.__cause__ if isinstance(error, TeardownRaised) else error)
