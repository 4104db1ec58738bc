"""The class and the instance: class-level providers answer from the running instance.

``LIFESPAN_DI['CONTAINER']`` names a class, and lifespan_di runs an instance of it.
dependency-injector gives the class providers of its own, so calling one
(``await Container.pool()``) would start a second copy of the resource that nobody
closes. While a lifespan runs an instance of a ``DeclarativeContainer`` class, each
class-level provider that is a resource, uses one, or opens per request (a provider
with an ``async_`` of its own: ``RequestResource``) is overridden by an
``InstanceAnswer`` that calls the instance's provider instead. The lifespan's end
removes them, and the class behaves as dependency-injector's again.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any, Protocol, cast

from dependency_injector import containers, errors, providers, resources

from lifespan_di.compat.dependency_injector import declarative_class
from lifespan_di.core import forms
from lifespan_di.core.graph import named_providers
from lifespan_di.core.loop import running_loop
from lifespan_di.exceptions import AlreadyRunningError, LifespanNotRunningError

__all__ = ["InstanceAnswer", "follow_lifespan"]


class Lifespan(Protocol):
    """What is read of a ``ContainerLifespan`` (whose module imports this one)."""

    name: str
    container: containers.Container

    @property
    def running(self) -> bool: ...


Installed = list[tuple[providers.Provider[Any], "InstanceAnswer", str]]
"""Each overridden class-level provider, its answer, and its async mode before."""

_installed: weakref.WeakKeyDictionary[Lifespan, Installed] = weakref.WeakKeyDictionary()


class InstanceAnswer(providers.Provider[Any]):
    """Overrides a class-level provider while a lifespan runs the class's instance.

    Calling it calls the instance's provider: a started resource's value, the
    request's instance of a request resource. On an event loop, a provider that
    dependency-injector runs in async mode (an async resource, or one built on it)
    gives an awaitable of that value, so ``await Container.pool()`` keeps working.
    """

    __slots__ = ("_awaitable", "_lifespan", "_path", "_target")

    def __init__(
        self,
        target: providers.Provider[Any],
        lifespan: Lifespan,
        path: str,
    ) -> None:
        self._target = target
        self._lifespan = lifespan
        self._path = path
        self._awaitable = not _own_async(target) and any(
            _async_resource(candidate) for candidate in (target, *target.traverse())
        )
        super().__init__()

    def _provide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._check()
        value = self._target(*args, **kwargs)
        loop = running_loop()
        if not self._awaitable or loop is None or inspect.isawaitable(value):
            return value
        ready = loop.create_future()
        ready.set_result(value)
        return ready

    def async_(self, *args: Any, **kwargs: Any) -> Any:
        """Await the instance's provider (a request resource opens asynchronously)."""
        self._check()
        return self._target.async_(*args, **kwargs)

    def __deepcopy__(self, memo: dict[int, Any] | None) -> InstanceAnswer:
        # dependency-injector copies a class's overridings into each new instance:
        # that instance would answer from this lifespan's, even after it ends.
        msg = (
            f"Cannot create another instance of {self._lifespan.name} while the "
            f"lifespan of one runs: until it shuts down, {self._path} answers from "
            "the running instance. Create container instances before the lifespan "
            "starts, or use the running one: lifespan_di.get_container()."
        )
        raise AlreadyRunningError(msg)

    def _check(self) -> None:
        if not self._lifespan.running:
            msg = (
                f"Cannot use {self._path}: the lifespan of {self._lifespan.name!r} is "
                "shutting down, and its resources are closing. Use them only while "
                "it runs."
            )
            raise LifespanNotRunningError(msg)


def follow_lifespan(lifespan: Lifespan) -> None:
    """Make the class's providers answer from the instance while ``lifespan`` runs.

    Called as the lifespan starts running, and again when it has stopped (or failed
    to start), which undoes it. Does nothing for a container made without a class.
    """
    if not lifespan.running:
        _remove(_installed.pop(lifespan, []))
        return
    container = lifespan.container
    cls = declarative_class(container)
    if cls is None or lifespan in _installed:
        return
    installed = _installed[lifespan] = []
    seen: set[int] = set()
    # Paired by name, as wiring pairs them; wiring's own map refuses an instance
    # that has providers its class lacks (``set_provider`` after instantiation).
    own = dict(named_providers(container))
    # A DeclarativeContainer class has the same ``providers`` mapping an instance has;
    # a copy, as wiring adds ``__self__`` to it when it maps markers.
    for name, provider in list(named_providers(cast("containers.Container", cls))):
        if id(provider) in seen or isinstance(provider, _NOT_OVERRIDDEN):
            continue
        seen.add(id(provider))
        target = own.get(name)
        if target is None or not _answers_from_instance(target):
            continue
        answer = InstanceAnswer(target, lifespan, f"{lifespan.name}.{name}")
        mode = _mode_before(provider, installed)
        try:
            provider.override(answer)
        except errors.Error:
            # It takes only its own kind of overriding (an abstract provider, an
            # Aggregate): never overridden on the class, its call raises rather
            # than start anything.
            continue
        installed.append((provider, answer, mode))
        # In disabled async mode a provider returns what its overriding gives,
        # awaitable or not, and leaves the mode as it is: the answer decides.
        answer.disable_async_mode()
        provider.disable_async_mode()


_NOT_OVERRIDDEN = (
    providers.Container,  # its providers are overridden one by one
    providers.Configuration,
    providers.ConfigurationOption,
    providers.Self,
    providers.DependenciesContainer,  # overriding it overrides its providers
)


def _answers_from_instance(target: providers.Provider[Any]) -> bool:
    """Whether calling the class's copy of ``target`` could open a second copy."""
    if _own_async(target):
        return True
    return any(
        isinstance(candidate, providers.Resource)
        for candidate in (target, *target.traverse())
    )


def _own_async(provider: providers.Provider[Any]) -> bool:
    """Whether awaiting ``provider`` differs from calling it: it opens per request.

    The core cannot import ``RequestResource``; this is what sets it apart from
    dependency-injector's providers, whose ``async_()`` is their ``__call__``.
    """
    return type(provider).async_ is not providers.Provider.async_


def _mode_before(provider: providers.Provider[Any], installed: Installed) -> str:
    """The provider's async mode before any lifespan's answer overrode it.

    Two lifespans of instances of one class can overlap: the class answers from the
    newer one, and gets its own mode back when neither runs.
    """
    for other in _installed.values():
        for overridden, _, mode in other:
            if overridden is provider and other is not installed:
                return mode
    return _async_mode(provider)


def _async_mode(provider: providers.Provider[Any]) -> str:
    if provider.is_async_mode_enabled():
        return "enabled"
    return "disabled" if provider.is_async_mode_disabled() else "undefined"


def _async_resource(provider: providers.Provider[Any]) -> bool:
    if not isinstance(provider, providers.Resource):
        return False
    provides = provider.provides
    if inspect.isclass(provides) and issubclass(provides, resources.AsyncResource):
        return True
    return forms.is_async(provides)


def _remove(installed: Installed) -> None:
    for provider, answer, mode in reversed(installed):
        if provider.last_overriding is answer:
            provider.reset_last_overriding()
        elif answer in provider.overridden:
            # Overridden again on top of it meanwhile (a test's override): keep those.
            others = [p for p in provider.overridden if p is not answer]
            provider.reset_override()
            for other in others:
                provider.override(other)
        if any(isinstance(other, InstanceAnswer) for other in provider.overridden):
            continue  # another lifespan's answer still decides
        if mode == "enabled":
            provider.enable_async_mode()
        elif mode == "undefined":
            provider.reset_async_mode()
