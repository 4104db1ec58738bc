"""Lifespan signals, named and sent as django-asgi-lifespan sends them.

Each is sent by ``LifespanASGIHandler`` with ``sender=LifespanASGIHandler`` and
``scope=`` the lifespan scope; receivers may be sync or async.
"""

from lifespan_di.compat.django_asgi_lifespan import (
    asgi_lifespan,
    asgi_shutdown,
    asgi_startup,
)

__all__ = ["asgi_lifespan", "asgi_shutdown", "asgi_startup"]
