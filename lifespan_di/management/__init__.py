"""Management commands, and ``LifespanCommand`` for commands of your own."""

from lifespan_di.management.base import LifespanCommand

__all__ = ["LifespanCommand"]
