"""What a timeout may be: the one rule for the settings, the checks and the engine."""

from __future__ import annotations

import math

from lifespan_di.exceptions import ConfigurationError

__all__ = ["check_timeout", "valid_timeout"]


def valid_timeout(value: object) -> bool:
    """Whether ``value`` is a timeout: a positive, finite number of seconds, or None.

    Deadlines are ``loop.time() + value``: an int too large for a float
    (``10**400``) raises ``OverflowError`` there, and infinity is what ``None``
    already says.
    """
    if value is None:
        return True
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        seconds = float(value)
    except OverflowError:
        return False
    return math.isfinite(seconds) and seconds > 0


def check_timeout(name: str, value: float | None) -> None:
    """Raise ``ConfigurationError`` if ``value`` is not a timeout."""
    if not valid_timeout(value):
        msg = (
            f"Cannot use {name}={value!r}: it must be a positive, finite number of "
            "seconds no larger than the largest float, or None for no limit."
        )
        raise ConfigurationError(msg)
