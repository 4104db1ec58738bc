"""System checks: configuration errors surface in ``manage.py check``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dependency_injector import containers, providers
from django.apps import AppConfig, apps
from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error, register

from lifespan_di.conf import (
    configured_container,
    container_configured,
    settings_problems,
)
from lifespan_di.exceptions import ConfigurationError
from lifespan_di.graph import named_providers
from lifespan_di.health import health_check_problems
from lifespan_di.injection import unresolved_view_markers
from lifespan_di.signals import asgi_lifespan, asgi_shutdown, asgi_startup

MIDDLEWARE = "lifespan_di.middleware.LifespanStateMiddleware"
RUNSERVERS = ("django.contrib.staticfiles", "daphne", "whitenoise.runserver_nostatic")
"""Apps whose own runserver command replaces lifespan_di's when listed first."""


@register()
def check_settings(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """E001-E005: the LIFESPAN_DI setting and the container it names."""
    if not container_configured() and _lifespan_receivers():
        return []  # a project that only registers lifespan managers or receivers
    problems = settings_problems()
    errors: list[CheckMessage] = [
        Error(problem.msg, hint=problem.hint, id=problem.id) for problem in problems
    ]
    if not problems:
        try:
            configured_container()
        except ConfigurationError as error:
            errors.append(Error(str(error), id=error.check_id or "lifespan_di.E004"))
    return errors


@register()
def check_middleware(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """E006: request.state needs LifespanStateMiddleware."""
    if MIDDLEWARE in getattr(settings, "MIDDLEWARE", []):
        return []
    return [
        Error(
            f"{MIDDLEWARE!r} is not in MIDDLEWARE, so views have no request.state.",
            hint=f"Add {MIDDLEWARE!r} near the top of MIDDLEWARE.",
            id="lifespan_di.E006",
        )
    ]


@register()
def check_injections(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """E007: every @inject marker of the URLconf's views names a provider."""
    container = _container()
    if container is None:
        return []
    return [
        Error(problem, id="lifespan_di.E007")
        for problem in unresolved_view_markers(container)
    ]


@register()
def check_health_checks(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """E008: the container's HEALTH_CHECKS name its resources and are callable."""
    container = _container()
    if container is None:
        return []
    return [
        Error(problem, id="lifespan_di.E008")
        for problem in health_check_problems(container)
    ]


@register()
def check_context_local_resources(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """W002: ContextLocalResource providers are never closed per request."""
    container = _container()
    if container is None:
        return []
    return [
        checks.Warning(
            f"{name!r} is a providers.ContextLocalResource: lifespan_di neither starts "
            "it with the app nor closes it after each request, and its teardown "
            "would not see the view's exception.",
            hint=(
                "Declare it as lifespan_di.providers.RequestResource(...) with the "
                "same arguments: one instance per request, closed after the response."
            ),
            id="lifespan_di.W002",
        )
        for name, provider in named_providers(container)
        if isinstance(provider, providers.ContextLocalResource)
    ]


@register()
def check_runserver_order(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """W001: an app listed earlier would replace lifespan_di's runserver."""
    # Django takes a command from the first app in INSTALLED_APPS that has it.
    names = [config.name for config in apps.get_app_configs()]
    if "lifespan_di" not in names:
        return []
    earlier = [
        name for name in names[: names.index("lifespan_di")] if name in RUNSERVERS
    ]
    return [
        checks.Warning(
            f"{name!r} comes before 'lifespan_di' in INSTALLED_APPS, so its runserver "
            "command wins and `manage.py runserver` runs without lifespan.",
            hint=f"Move 'lifespan_di' above {name!r} in INSTALLED_APPS.",
            id="lifespan_di.W001",
        )
        for name in earlier
    ]


def _container() -> containers.Container | None:
    """The configured container, or None (check_settings reports why)."""
    if not container_configured():
        return None
    try:
        return configured_container()
    except ConfigurationError:
        return None


def _lifespan_receivers() -> bool:
    return any(
        signal.has_listeners()
        for signal in (asgi_lifespan, asgi_startup, asgi_shutdown)
    )
