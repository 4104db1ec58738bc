"""Lifespan signals, named and sent as django-asgi-lifespan sends them.

Each is sent by ``LifespanASGIHandler`` with ``sender=LifespanASGIHandler`` and
``scope=`` the lifespan scope; receivers may be sync or async.
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["asgi_lifespan", "asgi_shutdown", "asgi_startup"]

asgi_startup = Signal()
"""Sent once every resource and lifespan manager has started, before the server is
told that startup is complete. A receiver that raises fails the startup."""

asgi_shutdown = Signal()
"""Sent when the server asks for shutdown, before any resource is shut down."""

asgi_lifespan = Signal()
"""Collects lifespan managers: each receiver returns one (see ``register``)."""
