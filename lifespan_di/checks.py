"""System checks: what would fail the startup, and more, in ``manage.py check``.

The startup problems come from ``preflight``, the list every entry point uses; the
checks here add what does not stop a startup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dependency_injector import providers
from django.apps import AppConfig, apps
from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error, register

from lifespan_di.compat.channels import asgi_application, routes_lifespan
from lifespan_di.conf import configured_container, container_configured
from lifespan_di.core.graph import named_providers
from lifespan_di.exceptions import ConfigurationError
from lifespan_di.preflight import startup_problems

MIDDLEWARE = "lifespan_di.middleware.LifespanStateMiddleware"
RUNSERVERS = ("django.contrib.staticfiles", "daphne", "whitenoise.runserver_nostatic")
"""Apps whose own runserver command replaces lifespan_di's when listed first."""


@register()
def check_startup(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """Every problem that would fail the lifespan startup (see ``preflight``)."""
    return [
        Error(problem.msg, hint=problem.hint or None, id=problem.id)
        for problem in startup_problems()
    ]


@register()
def check_middleware(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """E006: outside LifespanASGIHandler, request.state needs the middleware."""
    if MIDDLEWARE in getattr(settings, "MIDDLEWARE", []):
        return []
    return [
        Error(
            f"{MIDDLEWARE!r} is not in MIDDLEWARE, so requests that "
            "LifespanASGIHandler does not serve (Django's test Client and "
            "AsyncClient, WSGI servers) have no request.state and no request scope.",
            hint=(
                f"Add {MIDDLEWARE!r} near the top of MIDDLEWARE. Under "
                "get_asgi_application() requests have request.state without it."
            ),
            id="lifespan_di.E006",
        )
    ]


@register()
def check_context_local_resources(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """W002: ContextLocalResource providers are never closed per request."""
    if not container_configured():
        return []
    try:
        container = configured_container()
    except ConfigurationError:
        return []  # a startup problem, reported by check_startup
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


@register()
def check_channels_router(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """W003: a Channels router with no lifespan route never starts the resources."""
    application = asgi_application()
    if application is None or routes_lifespan(application[1]) is not False:
        return []
    return [
        checks.Warning(
            f"ASGI_APPLICATION {application[0]!r} is a Channels ProtocolTypeRouter "
            "with no 'lifespan' route, so the server's lifespan events reach nothing: "
            "uvicorn --lifespan on exits at startup, and its default --lifespan auto "
            "serves with no resource started.",
            hint=(
                "In asgi.py, import ProtocolTypeRouter from lifespan_di.channels "
                "instead of channels.routing."
            ),
            id="lifespan_di.W003",
        )
    ]
