"""``lifespan_di.asgi.get_asgi_application``, where django-asgi-lifespan has it."""

from lifespan_di.handler import get_asgi_application

__all__ = ["get_asgi_application"]
