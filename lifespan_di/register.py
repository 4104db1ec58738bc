"""``register_lifespan_manager``, where django-asgi-lifespan has it."""

from lifespan_di.compat.django_asgi_lifespan import (
    register_lifespan_manager,
    registered_managers,
)

__all__ = ["register_lifespan_manager", "registered_managers"]
