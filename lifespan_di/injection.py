"""``inject``: give a view (or any function) its dependencies from the container.

Markers are dependency-injector's own ``Provide[...]`` / ``Provider[...]``, resolved
against the running container without ``container.wire()``. A started resource costs
one lookup per call: dependency-injector's ``@inject`` awaits a gather on every call
of a provider in async mode, about 25 µs per request (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from dependency_injector import containers, providers

from lifespan_di.compat.channels import calling_consumer
from lifespan_di.compat.dependency_injector import resolve_marker
from lifespan_di.conf import container_of
from lifespan_di.core.lifespan import RUNTIME, ContainerLifespan
from lifespan_di.exceptions import InjectionError, LifespanNotRunningError
from lifespan_di.markers import (
    PROVIDER,
    Injection,
    Provide,
    Provider,
    describe_marker,
    read_injections,
)
from lifespan_di.providers import RequestResource, request_resources
from lifespan_di.view_styles import api_view_function, hide_parameters, view_functions

__all__ = ["Provide", "Provider", "inject", "unresolved_injections"]

F = TypeVar("F", bound=Callable[..., Any])

_Producer = tuple[str, int, providers.Provider[Any], Any]
"""Parameter name, positional index (``sys.maxsize`` if keyword-only), the provider,
and its started value, or ``_CALL`` when the provider must be called each time."""

_CALL: Any = object()


def inject(fn: F) -> F:
    """Inject the parameters marked with ``Provide[...]`` or ``Provider[...]``.

    Works on sync and async function views, on methods of class-based views, and on
    any other function. A marker is a parameter default (``client=Provide[Container.
    httpx_client]``) or ``Annotated`` metadata (``client: Annotated[httpx.AsyncClient,
    Provide[Container.httpx_client]]``); a string id (``Provide["httpx_client"]``)
    works too. Markers resolve against the running lifespan's container, or the
    configured one when none runs: no ``container.wire()`` is needed. Arguments passed
    explicitly win. An async function stays a coroutine function.

    Raises:
        InjectionError: At decoration, if ``fn`` has no marker or a marker cannot be
            used; at call, if a marker names no provider of the container.
        LifespanNotRunningError: At call, if a marker needs a started resource and no
            lifespan runs in this process.
    """
    if isinstance(fn, staticmethod | classmethod):
        return cast("F", type(fn)(inject(fn.__func__)))
    if inspect.isclass(fn):
        msg = (
            f"Cannot inject into the class {fn.__qualname__}: decorate its methods "
            "(get, post, dispatch ...) with @inject instead."
        )
        raise InjectionError(msg)
    # Inject outermost over DRF's @api_view: the markers are on the function it
    # wrapped, and the view passes the injected keywords on to it.
    source = api_view_function(fn) or fn
    signature, injections = read_injections(source)
    bindings = _Bindings(injections)
    if iscoroutinefunction(fn):
        wrapper = _async_wrapper(fn, bindings)
    else:
        wrapper = _sync_wrapper(fn, bindings)
    wrapper.__lifespan_di_injections__ = injections  # type: ignore[attr-defined]
    hide_parameters(
        wrapper,
        fn,
        signature if source is fn else None,
        (injection.name for injection in injections),
    )
    return cast("F", wrapper)


def unresolved_injections(
    container: containers.Container, view: Callable[..., Any]
) -> list[str]:
    """Describe each marker of an ``@inject`` view that ``container`` cannot resolve.

    ``view`` may be wrapped by other decorators; a class-based view's handler
    methods are inspected. Returns an empty list for a view without markers.
    """
    return [
        injection.unresolved_message(container)
        for candidate in view_functions(view)
        for injection in _injections_of(candidate)
        if resolve_marker(container, injection.marker) is None
    ]


# --- the wrappers, which run on every call ------------------------------------------
#
# Both run the same loop, written out in each: a helper shared by the two would cost
# a function call on every call of every injected function (measured with
# benchmarks/inject_overhead.py: +8 % sync, +17 % async on what inject adds). So each
# loop takes few attribute lookups and no method calls. A value is used as bound,
# except ``_CALL`` and overridden providers (tests), which are called, and request
# resources, which an async caller opens asynchronously first (``_Scoped``).


def _sync_wrapper(fn: Callable[..., Any], bindings: _Bindings) -> Callable[..., Any]:
    runtime = RUNTIME  # running_lifespan(), as an attribute: it is read per call

    @functools.wraps(fn)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        lifespan, producers = bindings.current
        if lifespan is None or lifespan is not runtime.active:
            producers = bindings.bind(runtime.active)
        count = len(args)
        for name, position, provider, value in producers:
            if position >= count and name not in kwargs:
                if value is _CALL or provider.last_overriding is not None:
                    value = provider()
                elif value.__class__ is _Scoped:
                    value = provider()  # which opens the request resources
                kwargs[name] = value
        return fn(*args, **kwargs)

    return sync_wrapper


def _async_wrapper(fn: Callable[..., Any], bindings: _Bindings) -> Callable[..., Any]:
    runtime = RUNTIME

    @functools.wraps(fn)
    async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
        lifespan, producers = bindings.current
        if lifespan is None or lifespan is not runtime.active:
            producers = bindings.bind(runtime.active)
        count = len(args)
        for name, position, provider, value in producers:
            if position >= count and name not in kwargs:
                if value is _CALL or provider.last_overriding is not None:
                    value = provider()
                elif value.__class__ is _Scoped:
                    value = await value.resolve(provider)
                kwargs[name] = value
        return await fn(*args, **kwargs)

    return async_wrapper


# --- resolving markers against the running lifespan -----------------------------------


class _Scoped:
    """The value of a producer whose provider opens request resources.

    Sync code just calls the provider (which opens them, see ``RequestResource``);
    async code opens them first, asynchronously, then calls it.
    """

    __slots__ = ("resources",)

    def __init__(self, resources: tuple[RequestResource[Any], ...]) -> None:
        self.resources = resources

    def resolve(self, provider: providers.Provider[Any]) -> Awaitable[Any]:
        if provider is self.resources[0] and len(self.resources) == 1:
            return provider.async_()  # the common case: one frame less per request
        return self._resolve(provider)

    async def _resolve(self, provider: providers.Provider[Any]) -> Any:
        for resource in self.resources:
            await resource.async_()
        return provider()


class _Bindings:
    """A decorated function's injections, resolved for the lifespan running now.

    ``current`` is replaced as one tuple, so a thread never sees a lifespan paired
    with another lifespan's providers.
    """

    __slots__ = ("current", "injections")

    def __init__(self, injections: tuple[Injection, ...]) -> None:
        self.injections = injections
        self.current: tuple[ContainerLifespan | None, tuple[_Producer, ...]] = (
            None,
            (),
        )

    def bind(self, active: ContainerLifespan | None) -> tuple[_Producer, ...]:
        producers = tuple(_producer(injection, active) for injection in self.injections)
        if active is not None:  # without a lifespan, resolve afresh on every call
            self.current = (active, producers)
        return producers


def _producer(injection: Injection, active: ContainerLifespan | None) -> _Producer:
    """Resolve the marker against the running container, or the configured one."""
    container = container_of(active)
    provider = resolve_marker(container, injection.marker)
    name, position = injection.name, injection.position
    if provider is None:
        raise InjectionError(injection.unresolved_message(container))
    if active is None and _uses_app_resource(provider):
        marker = describe_marker(injection.marker, container)
        what = f"{marker} for parameter {name!r} of {injection.owner}"
        raise LifespanNotRunningError.accessing(what, calling_consumer())
    if isinstance(injection.marker, PROVIDER):
        return (name, position, providers.Object(provider), provider)
    scoped = tuple(
        candidate
        for candidate in (provider, *provider.traverse())
        if isinstance(candidate, RequestResource)
    )
    if scoped:
        request_resources(container)  # names them for messages
        return (name, position, provider, _Scoped(scoped))
    # A started resource's value is fixed while its lifespan runs: hand it out
    # directly, which is 5x cheaper than calling the provider (benchmarks/).
    value = _CALL if active is None else active.started_value(provider, _CALL)
    return (name, position, provider, value)


def _uses_app_resource(provider: providers.Provider[Any]) -> bool:
    return any(
        isinstance(candidate, providers.Resource)
        for candidate in (provider, *provider.traverse())
    )


def _injections_of(function: Any) -> tuple[Injection, ...]:
    seen = 0
    while function is not None and seen < 20:  # bounded: __wrapped__ chains can loop
        injections: tuple[Injection, ...] | None = getattr(
            function, "__lifespan_di_injections__", None
        )
        if injections is not None:
            return injections
        function = getattr(function, "__wrapped__", None)
        seen += 1
    return ()
