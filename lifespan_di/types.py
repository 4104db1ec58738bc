"""Type aliases of django-asgi-lifespan, for code that annotates with them."""

from __future__ import annotations

from collections.abc import AsyncGenerator, MutableMapping
from typing import Any, TypeAlias

__all__ = ["LifespanManager", "State"]

State: TypeAlias = MutableMapping[str, Any]
"""What a lifespan manager yields; ``request.state`` satisfies it too."""

LifespanManager: TypeAlias = AsyncGenerator[State, None]
"""The return annotation of an ``@asynccontextmanager`` lifespan manager."""
