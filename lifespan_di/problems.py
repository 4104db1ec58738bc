"""``Problem``: what fails a startup, reported as a system check or raised."""

from __future__ import annotations

from dataclasses import dataclass

from lifespan_di.exceptions import ConfigurationError

__all__ = ["Problem"]


@dataclass(frozen=True)
class Problem:
    """A problem that fails the startup, reported as a system check or raised.

    Each ``id`` stands for one problem; docs/configuration.md lists them.
    """

    id: str
    msg: str
    hint: str = ""

    def __str__(self) -> str:
        hint = f" {self.hint}" if self.hint else ""
        return f"{self.msg}{hint} ({self.id})"

    def error(self) -> ConfigurationError:
        """Return the problem as an exception, with its hint and check id."""
        error = ConfigurationError(str(self))
        error.check_id = self.id
        return error
