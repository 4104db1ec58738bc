"""``get_asgi_application``, where Django and django-asgi-lifespan have it."""

from __future__ import annotations

import django
from dependency_injector import containers

from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.preflight import require_installed

__all__ = ["get_asgi_application"]


def get_asgi_application(
    container: containers.Container | None = None,
) -> LifespanASGIHandler:
    """Set up Django and return the ASGI application, as Django's own function does.

    Use it in ``asgi.py`` instead of ``django.core.asgi.get_asgi_application``:

    ```python
    from lifespan_di import get_asgi_application
    application = get_asgi_application()
    ```

    Args:
        container: Run this container instead of ``LIFESPAN_DI['CONTAINER']``;
            ``inject`` and ``get_container()`` use it while its lifespan runs.

    Raises:
        ConfigurationError: ``lifespan_di`` is not in ``INSTALLED_APPS`` (E016).
    """
    django.setup(set_prefix=False)
    # Here as well as at lifespan startup: a server that sends no lifespan (daphne)
    # would otherwise serve, and fail only when a request reads a resource.
    require_installed()
    return LifespanASGIHandler(container=container)
