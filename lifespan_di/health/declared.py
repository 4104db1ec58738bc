"""The checks a container declares in ``HEALTH_CHECKS``, and what is wrong with them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from dependency_injector import containers, providers

from lifespan_di.compat.dependency_injector import declarative_class
from lifespan_di.core.graph import container_name, first_names, named_providers

__all__ = ["HEALTH_CHECKS", "Check", "declared_checks", "health_check_problems"]

HEALTH_CHECKS = "HEALTH_CHECKS"
"""The container attribute mapping resource names to their checks."""

Check = Callable[[Any], object]
"""A callable or coroutine function receiving the started value; ``False`` fails."""


def health_check_problems(container: containers.Container) -> list[str]:
    """Describe what is wrong with the container's ``HEALTH_CHECKS``, if anything."""
    return declared_checks(container)[1]


def declared_checks(
    container: containers.Container,
) -> tuple[dict[str, Check], list[str]]:
    """Return the checks by each resource's first name, and the problems found."""
    primary = first_names(container)
    checks: dict[str, Check] = {}
    owners: dict[str, str] = {}
    problems: list[str] = []
    for owner, scope in _declaring_containers(container):
        declared = _attribute(scope)
        if declared is None:
            continue
        where = f"{owner}.{HEALTH_CHECKS}"
        if not isinstance(declared, Mapping):
            problems.append(
                f"Cannot use {where}: it is a {type(declared).__name__}, not a "
                "mapping. Declare it as {'db': ping_db}, resource names to checks."
            )
            continue
        names = dict(named_providers(scope))
        for key, function in declared.items():
            problem = _problem(where, key, function, names.get(key), names)
            if problem is not None:
                problems.append(problem)
                continue
            name = primary[id(names[key])]
            if name in owners:
                problems.append(
                    f"Cannot use the check of {key!r} in {where}: resource {name!r} "
                    f"already has one in {owners[name]}. Keep one of them."
                )
                continue
            owners[name] = where
            checks[name] = function
    return checks, problems


def _problem(
    where: str,
    key: object,
    function: object,
    provider: object,
    names: Mapping[str, object],
) -> str | None:
    if not isinstance(key, str) or provider is None:
        resources = [
            name
            for name, candidate in names.items()
            if isinstance(candidate, providers.Resource)
        ]
        return (
            f"Cannot use the health check {key!r} of {where}: it names no provider. "
            "Use the name of one of its resources: "
            f"{', '.join(map(repr, resources)) or 'it has none'}."
        )
    if not isinstance(provider, providers.Resource):
        return (
            f"Cannot use the health check {key!r} of {where}: it is a "
            f"{type(provider).__name__}, not a Resource. Only app-scoped resources "
            "have a started value to check."
        )
    if not callable(function):
        return (
            f"Cannot use the health check {key!r} of {where}: {function!r} is not "
            "callable. Give a function or coroutine function that receives the "
            "started resource."
        )
    return None


def _declaring_containers(
    container: containers.Container,
) -> Iterator[tuple[str, containers.Container]]:
    """Yield the container and every nested one, each with its display name."""
    yield container_name(container), container
    for provider in container.providers.values():
        if isinstance(provider, providers.Container):
            yield from _declaring_containers(provider.container)


def _attribute(container: containers.Container) -> object | None:
    # A container instance does not carry its declarative class's plain attributes.
    declared = getattr(container, HEALTH_CHECKS, None)
    if declared is None:
        declared = getattr(declarative_class(container), HEALTH_CHECKS, None)
    return declared
