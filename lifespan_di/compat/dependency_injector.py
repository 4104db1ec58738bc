"""The parts of dependency-injector that lifespan_di uses without a documented API.

Each is pinned by a test in ``tests/test_upstream.py`` and listed in
docs/how-it-works.md ("What lifespan_di relies on"): a new dependency-injector
release that changes one fails there first.

``RequestResource`` also follows dependency-injector's recipe for custom providers
(``_provide``, ``related``, ``__deepcopy__`` with ``_copy_overridings``), which its
documentation shows in "Writing a custom provider".
"""

from __future__ import annotations

import weakref
from typing import Any

from dependency_injector import containers, providers, wiring

__all__ = ["declarative_class", "forget_started", "resolve_marker"]

_maps: weakref.WeakKeyDictionary[containers.Container, wiring.ProvidersMap] = (
    weakref.WeakKeyDictionary()
)


def declarative_class(container: containers.Container) -> type | None:
    """Return the ``DeclarativeContainer`` class ``container`` was made from, if any.

    An instance of a declarative container is a ``DynamicContainer`` that keeps its
    class in ``declarative_parent``.
    """
    parent: type | None = getattr(container, "declarative_parent", None)
    return parent


def resolve_marker(
    container: containers.Container, marker: Any
) -> providers.Provider[Any] | None:
    """Return the container's provider for a ``Provide[...]`` marker, or None.

    ``wiring.ProvidersMap`` is what ``container.wire()`` uses: a class-level provider
    (``Container.db``), a string id (``"db"``, ``"infra.cache"``) and modifiers
    resolve exactly as wiring would resolve them.
    """
    providers_map = _maps.get(container)
    if providers_map is None:
        providers_map = _maps[container] = wiring.ProvidersMap(container)
    resolved: providers.Provider[Any] | None = providers_map.resolve_provider(
        marker.provider, marker.modifier
    )
    return resolved


def forget_started(provider: providers.Provider[Any]) -> None:
    """Make a started ``Resource`` forget its value without running its teardown.

    For a fork child, whose inherited values belong to the parent: ``shutdown()``
    would close the parent's connections. ``reset_state()`` (4.49) drops the state
    that ``init()`` returns while it is set; it is not in the type stubs.
    """
    if isinstance(provider, providers.Resource):
        provider.reset_state()  # type: ignore[attr-defined]
