"""The ``LIFESPAN_DI`` setting, read through one typed object, and its container."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dependency_injector import containers
from django.apps import apps
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from lifespan_di.core.lifespan import ContainerLifespan, running_lifespan
from lifespan_di.core.timeouts import valid_timeout
from lifespan_di.exceptions import ConfigurationError
from lifespan_di.problems import Problem
from lifespan_di.request_threads import request_threads_problems

__all__ = [
    "LifespanDISettings",
    "Problem",
    "configured_container",
    "container_configured",
    "container_of",
    "container_problems",
    "get_container",
    "get_settings",
    "settings_problems",
]

SETTING = "LIFESPAN_DI"
DEFAULT_TIMEOUT = 30.0
DEFAULT_HEALTH_CHECK_TIMEOUT = 1.0
KEYS = (
    "CONTAINER",
    "STARTUP_TIMEOUT",
    "SHUTDOWN_TIMEOUT",
    "HEALTH_CHECK_TIMEOUT",
    "REQUEST_THREADS",
)
EXAMPLE = '{"CONTAINER": "myproject.containers.Container"}'


@dataclass(frozen=True)
class LifespanDISettings:
    """The validated ``LIFESPAN_DI`` setting.

    Attributes:
        container: Dotted path to a ``DeclarativeContainer`` subclass or instance,
            or the class or instance itself.
        startup_timeout: Seconds the whole startup may take; ``None``: no bound.
        shutdown_timeout: Seconds each resource's teardown may take; ``None``: no bound.
        health_check_timeout: Seconds the health checks of one ``ready/`` request
            may take together.
        request_threads: How many long-lived threads to lend requests; ``None``:
            a new thread per request, as Django does (``lifespan_di.request_threads``).
    """

    container: object
    startup_timeout: float | None = DEFAULT_TIMEOUT
    shutdown_timeout: float | None = DEFAULT_TIMEOUT
    health_check_timeout: float = DEFAULT_HEALTH_CHECK_TIMEOUT
    request_threads: int | None = None


def settings_problems(*, required: bool = True) -> list[Problem]:
    """Return what is wrong with the ``LIFESPAN_DI`` setting itself.

    Args:
        required: Whether a missing setting is a problem.
    """
    if not container_configured():
        if not required:
            return []
        return [
            Problem(
                "lifespan_di.E001",
                "The LIFESPAN_DI setting is missing: lifespan_di does not know "
                "which container to run.",
                f"Add LIFESPAN_DI = {EXAMPLE} to your settings.",
            )
        ]
    raw = getattr(settings, SETTING)
    if not isinstance(raw, dict):
        return [
            Problem(
                "lifespan_di.E002",
                f"The LIFESPAN_DI setting must be a dict, not {type(raw).__name__}.",
                f"Set LIFESPAN_DI = {EXAMPLE}.",
            )
        ]
    problems = []
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        problems.append(
            Problem(
                "lifespan_di.E009",
                "The LIFESPAN_DI setting has unknown keys: "
                f"{', '.join(map(repr, unknown))}.",
                f"Use only {', '.join(KEYS[:-1])} and {KEYS[-1]}.",
            )
        )
    if "CONTAINER" not in raw:
        problems.append(
            Problem(
                "lifespan_di.E010",
                "LIFESPAN_DI['CONTAINER'] is missing.",
                f"Set LIFESPAN_DI = {EXAMPLE}.",
            )
        )
    return problems + _timeout_problems(raw) + request_threads_problems(raw)


def _timeout_problems(raw: dict[str, Any]) -> list[Problem]:
    problems = [
        Problem(
            "lifespan_di.E005",
            f"LIFESPAN_DI[{key!r}] is {value!r}.",
            "Use a positive, finite number of seconds no larger than the largest "
            "float, or None for no limit.",
        )
        for key in ("STARTUP_TIMEOUT", "SHUTDOWN_TIMEOUT")
        if not valid_timeout(value := raw.get(key, DEFAULT_TIMEOUT))
    ]
    health_timeout = raw.get("HEALTH_CHECK_TIMEOUT", DEFAULT_HEALTH_CHECK_TIMEOUT)
    # A readiness probe must answer, so unlike the lifespan timeouts it has no None.
    if health_timeout is None or not valid_timeout(health_timeout):
        problems.append(
            Problem(
                "lifespan_di.E012",
                f"LIFESPAN_DI['HEALTH_CHECK_TIMEOUT'] is {health_timeout!r}.",
                "Use a positive, finite number of seconds no larger than the "
                "largest float.",
            )
        )
    return problems


def get_settings() -> LifespanDISettings:
    """Read and validate the ``LIFESPAN_DI`` setting.

    It is read on every call, so each lifespan startup sees the current value (tests
    override it with ``override_settings``).

    Raises:
        ConfigurationError: The setting is missing or malformed.
    """
    problems = settings_problems()
    if problems:
        raise problems[0].error()
    raw: dict[str, Any] = getattr(settings, SETTING)
    return LifespanDISettings(
        container=raw["CONTAINER"],
        startup_timeout=raw.get("STARTUP_TIMEOUT", DEFAULT_TIMEOUT),
        shutdown_timeout=raw.get("SHUTDOWN_TIMEOUT", DEFAULT_TIMEOUT),
        health_check_timeout=raw.get(
            "HEALTH_CHECK_TIMEOUT", DEFAULT_HEALTH_CHECK_TIMEOUT
        ),
        request_threads=raw.get("REQUEST_THREADS"),
    )


def container_configured() -> bool:
    """Whether the project has a ``LIFESPAN_DI`` setting, and so a container."""
    return hasattr(settings, SETTING)


_configured: tuple[object, containers.Container] | None = None


def configured_container() -> containers.Container:
    """Return the container named by ``LIFESPAN_DI['CONTAINER']``, created once.

    A class is instantiated on first use, which must come after the app registry is
    ready: services that import models fail earlier (dependency-injector issue #466).

    Raises:
        ConfigurationError: The setting is invalid, the app registry is not ready,
            or the setting names no container that can be created.
    """
    loaded = _load_configured()
    if isinstance(loaded, Problem):
        raise loaded.error()
    return loaded


def container_problems() -> list[Problem]:
    """Return why the configured container cannot be loaded, if it cannot."""
    loaded = _load_configured()
    return [loaded] if isinstance(loaded, Problem) else []


def get_container() -> containers.Container:
    """Return the container whose resources this process uses.

    While a lifespan runs, that is its container (the one given to
    ``get_asgi_application(container=...)`` if any); otherwise the container
    configured in ``LIFESPAN_DI['CONTAINER']``, created once per process.
    """
    return container_of(running_lifespan())


def container_of(lifespan: ContainerLifespan | None) -> containers.Container:
    """Return the container ``lifespan`` runs; without one, the configured one."""
    return lifespan.container if lifespan is not None else configured_container()


def _load_configured() -> containers.Container | Problem:
    global _configured
    value = get_settings().container
    if _configured is not None and _configured[0] is value:
        return _configured[1]
    if not apps.models_ready:
        msg = (
            "Cannot create the lifespan_di container before Django's app registry is "
            "ready: services that import models would fail. Call get_container() from "
            "code that runs after django.setup(), not at import time."
        )
        raise ConfigurationError(msg)
    loaded = _load(value)
    if not isinstance(loaded, Problem):
        _configured = (value, loaded)
    return loaded


def _load(value: object) -> containers.Container | Problem:
    target = _import(value) if isinstance(value, str) else value
    if isinstance(target, Problem):
        return target
    if isinstance(target, containers.Container):
        return target
    if isinstance(target, type) and issubclass(target, containers.DeclarativeContainer):
        try:
            return target()
        except Exception as error:
            return Problem(
                "lifespan_di.E011",
                f"Cannot create the container {target.__qualname__}: it raised "
                f"{error!r}.",
                "Fix the container so that instantiating it does not raise.",
            )
    return Problem(
        "lifespan_di.E004",
        f"LIFESPAN_DI['CONTAINER'] = {value!r} is not a dependency-injector container.",
        "Point it to a DeclarativeContainer subclass or an instance of one.",
    )


def _import(path: str) -> object:
    """Import the object at ``path``; a ``Problem`` (E003) when that fails."""
    try:
        return import_string(path)
    except ImportError as error:
        return Problem(
            "lifespan_di.E003",
            f"Cannot import LIFESPAN_DI['CONTAINER'] = {path!r}: {error}.",
            "Use the dotted path of your container class, "
            "e.g. 'myproject.containers.Container'.",
        )
    except Exception as error:
        if (
            isinstance(error, ConfigurationError)
            and error.check_id == "lifespan_di.E003"
        ):
            # Code this import ran asked for the container, whose import then failed
            # on the module being imported: its own E003 would repeat the id.
            return Problem(
                "lifespan_di.E003",
                f"Cannot import LIFESPAN_DI['CONTAINER'] = {path!r}: code run by "
                "that import asked for the container (get_container(), or a resource "
                "through lifespan_di) before its module had finished defining it.",
                "Ask for the container inside functions (views, tasks, "
                "AppConfig.ready()), not while a module is being imported.",
            )
        # The module exists but its own code raised: a check must report it,
        # not crash `manage.py check` with the module's traceback.
        return Problem(
            "lifespan_di.E003",
            f"Cannot import LIFESPAN_DI['CONTAINER'] = {path!r}: importing it "
            f"raised {error!r}.",
            "Fix the module so that importing it does not raise: importing it "
            "in a Python shell shows the traceback.",
        )


@receiver(setting_changed)
def _forget_container(*, setting: str, **kwargs: Any) -> None:
    global _configured
    if setting == SETTING:
        _configured = None
