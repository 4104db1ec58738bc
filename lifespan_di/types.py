"""Type aliases of django-asgi-lifespan, for code that annotates with them."""

from lifespan_di.compat.django_asgi_lifespan import LifespanManager, State

__all__ = ["LifespanManager", "State"]
