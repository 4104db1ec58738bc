"""What the handler answers the server in the lifespan protocol when it cannot go on.

The failures it answers for include a receiver of the lifespan signals raising.

Spec: https://asgi.readthedocs.io/en/latest/specs/lifespan.html: a failure is sent as
``lifespan.startup.failed`` / ``lifespan.shutdown.failed`` with a message the server
prints, so each message says what happened and what was shut down.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from asgiref.typing import (
    ASGISendEvent,
    LifespanScope,
    LifespanShutdownFailedEvent,
    LifespanStartupFailedEvent,
)
from django.dispatch import Signal

from lifespan_di.compat.django_asgi_lifespan import asgi_startup
from lifespan_di.core.lifespan import ContainerLifespan
from lifespan_di.exceptions import ConfigurationError, LifespanDIError, ShutdownError

__all__ = [
    "Failed",
    "describe",
    "refusal",
    "send_signal",
    "shutdown_failed",
    "shutdown_logging_errors",
    "startup_failed",
]

logger = logging.getLogger("lifespan_di")


class Failed(Exception):
    """The lifespan failed on our side; ``answer`` tells the server.

    ``interrupt``: a resource's ``KeyboardInterrupt`` or ``SystemExit``, to raise
    once the server has been told.
    """

    def __init__(
        self,
        answer: LifespanStartupFailedEvent | LifespanShutdownFailedEvent,
        interrupt: KeyboardInterrupt | SystemExit | None = None,
    ) -> None:
        super().__init__(answer["message"])
        self.answer = answer
        self.interrupt = interrupt


def startup_failed(
    message: str, interrupt: KeyboardInterrupt | SystemExit | None = None
) -> Failed:
    """The failure that answers ``lifespan.startup``."""
    return Failed({"type": "lifespan.startup.failed", "message": message}, interrupt)


def shutdown_failed(
    message: str, interrupt: KeyboardInterrupt | SystemExit | None = None
) -> Failed:
    """The failure that answers ``lifespan.shutdown``."""
    return Failed({"type": "lifespan.shutdown.failed", "message": message}, interrupt)


def refusal(received: str, *, running: bool) -> ASGISendEvent:
    """Answer a message the lifespan protocol does not allow at this point."""
    if received == "lifespan.shutdown":
        return {
            "type": "lifespan.shutdown.failed",
            "message": (
                "Received 'lifespan.shutdown' before 'lifespan.startup': no resources "
                "were started, so none were shut down."
            ),
        }
    if received == "lifespan.startup" and running:
        return {
            "type": "lifespan.startup.failed",
            "message": (
                "Received a second 'lifespan.startup' while the resources were "
                "running: they have been shut down. A server must send startup once "
                "per lifespan."
            ),
        }
    if running:
        return {
            "type": "lifespan.shutdown.failed",
            "message": (
                f"Received an unexpected lifespan message {received!r} while "
                "waiting for 'lifespan.shutdown': the resources have been shut down."
            ),
        }
    return {
        "type": "lifespan.startup.failed",
        "message": (
            f"Received an unexpected lifespan message {received!r} while waiting for "
            "'lifespan.startup': no resources were started."
        ),
    }


def describe(error: BaseException) -> str:
    """The message for the server: ours as they are, others with their traceback.

    A resource's ``KeyboardInterrupt`` or ``SystemExit`` is described by the
    ``StartupError`` / ``ShutdownError`` it carries as its cause.
    """
    if not isinstance(error, Exception):
        cause = error.__cause__
        if isinstance(cause, LifespanDIError):
            return describe(cause)
        return f"Interrupted by {error!r}."
    if isinstance(error, ShutdownError):
        return error.message
    if isinstance(error, ConfigurationError):
        logger.error("%s", error)  # the engine logs its own errors; this one is ours
        return str(error)
    if isinstance(error, LifespanDIError):
        return str(error)
    # Not one of ours: a bug or an unexpected failure; the traceback is the message.
    logger.error("Lifespan failed unexpectedly.", exc_info=error)
    return "".join(traceback.format_exception(error))


async def send_signal(
    signal: Signal, sender: type[Any], scope: LifespanScope
) -> str | None:
    """Send a lifespan signal to its receivers; describe the failure, if any."""
    try:
        await signal.asend(sender=sender, scope=scope)
    except Exception as error:
        name = "asgi_startup" if signal is asgi_startup else "asgi_shutdown"
        logger.exception("A receiver of %s raised.", name)
        return f"A receiver of the {name} signal raised {error!r}."
    return None


async def shutdown_logging_errors(lifespan: ContainerLifespan) -> None:
    """Shut ``lifespan`` down as a startup fails; log a failure, not raise it.

    The startup's failure (a signal receiver's, the server's) is what the server
    hears; a shutdown failing after it is logged.
    """
    try:
        await lifespan.shutdown()
    except Exception:
        logger.exception("Shutting down %s after a server error failed.", lifespan.name)
