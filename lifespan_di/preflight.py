"""Every problem that fails a lifespan startup before any resource starts, in one list.

Every entry point asks here, so they agree: the ASGI startup (and the test clients,
which go through it), ``lifespan()``, ``manage.py lifespan check`` and, as system
checks, ``manage.py check``. The problems and their ids are listed in
docs/configuration.md; the checks that do not stop a startup (a missing
``LifespanStateMiddleware``, the warnings) are in ``checks``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from dependency_injector import containers
from django.urls import URLPattern, URLResolver, get_resolver

from lifespan_di.compat.channels import asgi_application, consumer_applications
from lifespan_di.compat.django_asgi_lifespan import (
    registered_managers,
    signal_receivers,
)
from lifespan_di.conf import (
    Problem,
    configured_container,
    container_configured,
    container_problems,
    get_settings,
    settings_problems,
)
from lifespan_di.core.lifespan import ContainerLifespan
from lifespan_di.exceptions import ConfigurationError
from lifespan_di.health.declared import health_check_problems
from lifespan_di.injection import unresolved_injections
from lifespan_di.installation import APP, STATICFILES, missing
from lifespan_di.providers import request_resources
from lifespan_di.view_resources import lifetime_problems

__all__ = [
    "installation_problems",
    "prepare_lifespan",
    "require_installed",
    "startup_problems",
]


def startup_problems(
    container: containers.Container | None = None,
) -> list[Problem]:
    """Return every problem that would fail the startup of a lifespan.

    Args:
        container: The container to run instead of the configured one
            (``get_asgi_application(container=...)``). The setting then needs no
            ``CONTAINER``, and the URLconf's markers are not held to it: an explicit
            container may serve other views.
    """
    required = container is None and not signal_receivers()
    problems = settings_problems(required=required)
    if container is None and container_configured() and not problems:
        problems += container_problems()
        if not problems:
            container = configured_container()
            problems += _view_marker_problems(container)
    if container is not None:
        problems += [
            Problem("lifespan_di.E008", problem)
            for problem in health_check_problems(container)
        ]
        problems += [
            Problem("lifespan_di.E013", problem)
            for problem in lifetime_problems(container)
        ]
    return installation_problems() + problems


def installation_problems() -> list[Problem]:
    """E016 if lifespan_di is not in ``INSTALLED_APPS``: no checks, no commands.

    ``get_asgi_application()`` and ``LifespanStateMiddleware`` raise it too, for
    servers that send no lifespan events (Django's own runserver, daphne, WSGI).
    ``manage.py check`` cannot report it: Django runs only installed apps' checks.
    """
    if not missing():
        return []
    return [
        Problem(
            "lifespan_di.E016",
            f"{APP!r} is not in INSTALLED_APPS, so `manage.py check` never runs "
            "lifespan_di's checks, `manage.py lifespan` does not exist and "
            "`manage.py runserver` serves without lifespan.",
            f"Add {APP!r} to INSTALLED_APPS, above {STATICFILES!r} (whose "
            "runserver would otherwise win).",
        )
    ]


def require_installed() -> None:
    """Raise E016's ``ConfigurationError`` if lifespan_di is not in INSTALLED_APPS."""
    problems = installation_problems()
    if problems:
        raise problems[0].error()


async def prepare_lifespan(
    container: containers.Container | None = None,
) -> ContainerLifespan:
    """Check everything a startup needs, then create the lifespan to start.

    The lifespan runs ``container`` (by default the configured one) and the
    registered lifespan managers, with the timeouts of ``LIFESPAN_DI``.

    Raises:
        ConfigurationError: One or more startup problems, all named in the message.
    """
    problems = startup_problems(container)
    if problems:
        error = ConfigurationError(" ".join(map(str, problems)))
        error.check_id = problems[0].id
        raise error
    managers = await registered_managers()
    config = get_settings() if container_configured() else None
    if container is None and config is not None:
        container = configured_container()
    if container is not None:
        request_resources(container)  # names them for messages, before any request
    if config is None:
        return ContainerLifespan(container, managers=managers)
    return ContainerLifespan(
        container,
        startup_timeout=config.startup_timeout,
        shutdown_timeout=config.shutdown_timeout,
        managers=managers,
    )


def _view_marker_problems(container: containers.Container) -> list[Problem]:
    """The ``inject`` markers ``container`` cannot resolve, of views and consumers.

    The views of the URLconf, and the Channels consumers routed by the
    ``ASGI_APPLICATION`` setting. None of either when it cannot be imported: Django's
    own URL checks, Channels and every request report that.
    """
    try:
        views = list(_views(get_resolver().url_patterns))
    except Exception:
        views = []
    application = asgi_application()
    if application is not None:
        views += consumer_applications(application[1])
    return [
        Problem("lifespan_di.E007", problem)
        for view in views
        for problem in unresolved_injections(container, view)
    ]


def _views(patterns: Iterable[URLPattern | URLResolver]) -> Iterator[Any]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns)
        else:
            yield pattern.callback
