"""A container's app-scoped resources, their names and the order they depend on.

A resource depends on another when the other is reachable from its arguments,
directly or through any chain of other providers (Factory, Singleton, Callable,
Configuration, nested containers, overrides ...). dependency-injector itself only
honours *direct* Resource-to-Resource arguments when it shuts down (see "What
lifespan_di relies on" in docs/how-it-works.md), so the graph is built here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from dependency_injector import containers, providers

from lifespan_di.compat.dependency_injector import declarative_class
from lifespan_di.compat.django_asgi_lifespan import ManagerFactory
from lifespan_di.exceptions import ConfigurationError

__all__ = [
    "ResourceGraph",
    "ResourceNode",
    "build_graph",
    "container_name",
    "first_names",
    "named_providers",
]

logger = logging.getLogger("lifespan_di")


@dataclass(eq=False)
class ResourceNode:
    """One app-scoped resource of a container.

    Attributes:
        path: Display name, such as ``"Container.infra.cache"``.
        names: Keys under which its value is published in the lifespan state
            (``"infra.cache"``); more than one when a provider has aliases, none
            for a resource declared inline inside another provider.
        provider: The container's ``providers.Resource``.
        dependencies: Resources that must be started before this one.
        dependents: Resources that must be stopped before this one.
        merges_state: The value is a mapping merged into the state (a registered
            lifespan manager) instead of being published under ``names``.
    """

    path: str
    names: tuple[str, ...]
    provider: providers.Resource[object]
    dependencies: list[ResourceNode] = field(default_factory=list)
    dependents: list[ResourceNode] = field(default_factory=list)
    merges_state: bool = False

    def __repr__(self) -> str:
        return f"<ResourceNode {self.path}>"


@dataclass
class ResourceGraph:
    """The resources of a container, in an order where dependencies come first."""

    nodes: list[ResourceNode]
    resource_users: list[providers.Provider[object]]
    """Every other provider of the container that uses a resource, directly or not."""

    def waves(self) -> list[list[ResourceNode]]:
        """Group the resources by how many resources must start before them.

        Wave 1 needs nothing; each later wave needs something from the one before.
        Within a wave resources start concurrently (the engine does not wait for a
        whole wave, only for each resource's own dependencies).
        """
        depth: dict[ResourceNode, int] = {}
        for node in self.nodes:  # dependencies come first in self.nodes
            depth[node] = 1 + max((depth[dep] for dep in node.dependencies), default=-1)
        waves: list[list[ResourceNode]] = [[] for _ in set(depth.values())]
        for node in self.nodes:
            waves[depth[node]].append(node)
        return waves


def container_name(container: containers.Container) -> str:
    """Return the name a user knows a container by: its declarative class."""
    return (declarative_class(container) or type(container)).__name__


def named_providers(
    container: containers.Container, prefix: str = ""
) -> Iterator[tuple[str, providers.Provider[object]]]:
    """Yield every provider with its name, nested containers' as ``"infra.cache"``."""
    for name, provider in container.providers.items():
        yield f"{prefix}{name}", provider
        if isinstance(provider, providers.Container):
            yield from named_providers(provider.container, prefix=f"{prefix}{name}.")


def first_names(container: containers.Container) -> dict[int, str]:
    """Map each provider (by ``id``) to its first name: the name it is known by."""
    names: dict[int, str] = {}
    for name, provider in named_providers(container):
        names.setdefault(id(provider), name)
    return names


def build_graph(
    container: containers.Container, managers: Sequence[ManagerFactory] = ()
) -> ResourceGraph:
    """Collect the resources of ``container`` and the lifespan managers, in order.

    ``ContextLocalResource`` providers are per request, not per application, and are
    left out. Managers depend on nothing and come after the container's resources.

    Raises:
        ConfigurationError: The resources depend on each other in a cycle.
    """
    root = container_name(container)
    names: dict[int, list[str]] = {}
    resources: dict[int, providers.Resource[object]] = {}
    for name, provider in named_providers(container):
        if isinstance(provider, providers.Resource):
            names.setdefault(id(provider), []).append(name)
            resources[id(provider)] = provider
    for provider in container.traverse(types=[providers.Resource]):
        resources.setdefault(id(provider), provider)

    nodes = {
        key: ResourceNode(
            path=_display_path(root, names.get(key), provider),
            names=tuple(names.get(key, ())),
            provider=provider,
        )
        for key, provider in resources.items()
    }
    for key, node in nodes.items():
        found = _resource_dependencies(resources[key], resources)
        for dependency_key in sorted(found, key=list(resources).index):
            dependency = nodes[dependency_key]
            node.dependencies.append(dependency)
            dependency.dependents.append(node)

    everything: list[providers.Provider[object]] = list(container.traverse())
    users = [
        provider
        for provider in everything
        if id(provider) not in resources and _uses_any(provider, resources)
    ]
    ordered = _topological(list(nodes.values()))
    return ResourceGraph(ordered + _manager_nodes(managers), users)


def _manager_nodes(managers: Sequence[ManagerFactory]) -> list[ResourceNode]:
    """Wrap lifespan managers as resources without dependencies, each once.

    Django's signals take a second identical ``connect`` as a no-op, so a manager
    registered twice (``AppConfig.ready()`` run twice) runs once here too.
    """
    nodes: dict[ManagerFactory, ResourceNode] = {}
    for manager in managers:
        name = _manager_name(manager)
        if manager in nodes:
            logger.debug("Lifespan manager %s is registered twice; it runs once.", name)
            continue
        nodes[manager] = ResourceNode(
            path=f"lifespan manager {name}",
            names=(),
            provider=providers.Resource(manager),
            merges_state=True,
        )
    return list(nodes.values())


def _manager_name(manager: ManagerFactory) -> str:
    module = getattr(manager, "__module__", None)
    name = getattr(manager, "__qualname__", None) or repr(manager)
    return f"{module}.{name}" if module else name


def _display_path(
    root: str, names: list[str] | None, provider: providers.Resource[object]
) -> str:
    if names:
        return f"{root}.{names[0]}"
    provides = getattr(provider.provides, "__qualname__", repr(provider.provides))
    return f"{root}.<inline Resource({provides})>"


def _resource_dependencies(
    resource: providers.Provider[object],
    resources: dict[int, providers.Resource[object]],
) -> list[int]:
    """Return the resources reachable from ``resource`` without passing another one."""
    found: list[int] = []
    seen = {id(resource)}
    stack = list(resource.related)
    while stack:
        provider = stack.pop()
        if id(provider) in seen:
            continue
        seen.add(id(provider))
        if id(provider) in resources:
            found.append(id(provider))
        else:
            stack.extend(provider.related)
    return found


def _uses_any(
    provider: providers.Provider[object],
    resources: dict[int, providers.Resource[object]],
) -> bool:
    related: list[providers.Provider[object]] = list(provider.traverse())
    return any(id(candidate) in resources for candidate in related)


def _topological(nodes: Iterable[ResourceNode]) -> list[ResourceNode]:
    """Kahn's algorithm, stable in declaration order."""
    pending = list(nodes)
    remaining = {node: len(node.dependencies) for node in pending}
    ordered: list[ResourceNode] = []
    ready = [node for node in pending if remaining[node] == 0]
    while ready:
        node = ready.pop(0)
        ordered.append(node)
        for dependent in node.dependents:
            remaining[dependent] -= 1
            if remaining[dependent] == 0:
                ready.append(dependent)
    if len(ordered) < len(pending):
        cycle = ", ".join(node.path for node in pending if remaining[node] > 0)
        msg = (
            f"Cannot order the resources {cycle}: they depend on each other "
            "in a cycle. "
            "Break the cycle so that one of them can start first."
        )
        raise ConfigurationError(msg)
    return ordered
