"""Django app configuration: create the container once the app registry is ready."""

from __future__ import annotations

import contextlib

from django.apps import AppConfig

from lifespan_di.exceptions import ConfigurationError


class LifespanDIConfig(AppConfig):
    """Registers the system checks and creates the configured container."""

    name = "lifespan_di"
    verbose_name = "Lifespan DI"

    def ready(self) -> None:
        from lifespan_di import checks  # noqa: F401  (registers the checks)
        from lifespan_di.conf import configured_container

        # A broken configuration is reported by the system checks, and raised again
        # by get_container() and at lifespan startup, where it fails the startup.
        with contextlib.suppress(ConfigurationError):
            configured_container()
