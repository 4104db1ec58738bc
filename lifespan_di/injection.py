"""``inject``: give a view (or any function) its dependencies from the container.

Markers are dependency-injector's own ``Provide[...]`` / ``Provider[...]``, resolved
against the running container without ``container.wire()``. A started resource costs
one provider call: dependency-injector's ``@inject`` awaits a gather on every call of
a provider in async mode, about 25 µs per request (FACTS.md §5).
"""

from __future__ import annotations

import functools
import inspect
import sys
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Annotated, Any, TypeVar, cast, get_args, get_origin

from asgiref.sync import iscoroutinefunction
from dependency_injector import containers, providers, wiring
from django.urls import URLPattern, URLResolver, get_resolver

from lifespan_di.conf import configured_container
from lifespan_di.engine import ContainerLifespan
from lifespan_di.exceptions import InjectionError, LifespanNotRunningError
from lifespan_di.graph import container_name
from lifespan_di.providers import RequestResource
from lifespan_di.runtime import RUNTIME

__all__ = [
    "Provide",
    "Provider",
    "inject",
    "unresolved_injections",
    "unresolved_view_markers",
]

Provide = wiring.Provide
Provider = wiring.Provider

F = TypeVar("F", bound=Callable[..., Any])

# At runtime these are classes; dependency-injector's stubs describe instances.
_PROVIDE = cast("type", wiring.Provide)
_PROVIDER = cast("type", wiring.Provider)
_CLOSING = cast("type", wiring.Closing)
_MARKERS = (_PROVIDE, _PROVIDER, _CLOSING)

_Producer = tuple[str, int, providers.Provider[Any], Any]
"""Parameter name, positional index (``sys.maxsize`` if keyword-only), the provider,
and its started value, or ``_CALL`` when the provider must be called each time."""

_CALL: Any = object()


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


def _request_resources(
    provider: providers.Provider[Any],
) -> tuple[RequestResource[Any], ...]:
    return tuple(
        candidate
        for candidate in (provider, *provider.traverse())
        if isinstance(candidate, RequestResource)
    )


class _Injection:
    """One injected parameter of a decorated function."""

    __slots__ = ("marker", "name", "owner", "position")

    def __init__(self, name: str, marker: Any, position: int, owner: str) -> None:
        self.name = name
        self.marker = marker
        self.position = position
        self.owner = owner

    def producer(self, active: ContainerLifespan | None) -> _Producer:
        """Resolve the marker against the running container, or the configured one."""
        container = active.container if active is not None else configured_container()
        provider = resolve(container, self.marker)
        if provider is None:
            raise InjectionError(self._unresolved_message(container))
        if active is None and _uses_app_resource(provider):
            what = f"{self.marker!r} for parameter {self.name!r} of {self.owner}"
            raise LifespanNotRunningError.accessing(what)
        if isinstance(self.marker, _PROVIDER):
            return (self.name, self.position, providers.Object(provider), provider)
        scoped = _request_resources(provider)
        if scoped:
            return (self.name, self.position, provider, _Scoped(scoped))
        # A started resource's value is fixed while its lifespan runs: hand it out
        # directly, which is 5x cheaper than calling the provider (benchmarks/).
        value = _CALL if active is None else active.started_value(provider, _CALL)
        return (self.name, self.position, provider, value)

    def _unresolved_message(self, container: containers.Container) -> str:
        return (
            f"Cannot inject parameter {self.name!r} of {self.owner}: {self.marker!r} "
            f"names no provider of the container {container_name(container)!r}. Use a "
            "provider of the container configured in LIFESPAN_DI['CONTAINER'], or its "
            "name as a string: Provide['httpx_client']."
        )


class _Bindings:
    """A decorated function's injections, resolved for the lifespan running now.

    ``current`` is replaced as one tuple, so a thread never sees a lifespan paired
    with another lifespan's providers.
    """

    __slots__ = ("current", "injections")

    def __init__(self, injections: tuple[_Injection, ...]) -> None:
        self.injections = injections
        self.current: tuple[ContainerLifespan | None, tuple[_Producer, ...]] = (
            None,
            (),
        )

    def bind(self, active: ContainerLifespan | None) -> tuple[_Producer, ...]:
        producers = tuple(injection.producer(active) for injection in self.injections)
        if active is not None:  # without a lifespan, resolve afresh on every call
            self.current = (active, producers)
        return producers


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
    source = _api_view_function(fn) or fn
    signature = _signature(source)
    injections = _read_injections(source, signature)
    bindings = _Bindings(injections)
    runtime = RUNTIME
    # The wrappers below run on every request: no method calls, few attribute
    # lookups. A provider overridden while the lifespan runs (tests) is called.
    if iscoroutinefunction(fn):

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

        wrapper: Callable[..., Any] = async_wrapper
    else:

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            lifespan, producers = bindings.current
            if lifespan is None or lifespan is not runtime.active:
                producers = bindings.bind(runtime.active)
            count = len(args)
            for name, position, provider, value in producers:
                if position >= count and name not in kwargs:
                    if (
                        value is _CALL
                        or value.__class__ is _Scoped
                        or provider.last_overriding is not None
                    ):
                        value = provider()
                    kwargs[name] = value
            return fn(*args, **kwargs)

        wrapper = sync_wrapper
    wrapper.__lifespan_di_injections__ = injections  # type: ignore[attr-defined]
    _hide_injected(wrapper, fn, signature if source is fn else None, injections)
    return cast("F", wrapper)


def _hide_injected(
    wrapper: Callable[..., Any],
    fn: Callable[..., Any],
    signature: inspect.Signature | None,
    injections: tuple[_Injection, ...],
) -> None:
    """Describe ``wrapper`` as ``fn`` without the injected parameters.

    Frameworks that build a request schema from the signature (django-ninja, via
    pydantic) must not see the injected parameters as request fields. A
    ``__signature__`` also stops ``inspect.signature`` from following ``__wrapped__``
    back to them. Its annotations are evaluated: django-ninja resolves string
    annotations in ``wrapper.__globals__``, which is this module's.
    """
    names = {injection.name for injection in injections}
    if signature is None:
        signature = inspect.signature(fn)
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for p in signature.parameters.values() if p.name not in names]
    )
    # functools.wraps shares fn's dict: build a new one, never mutate it.
    wrapper.__annotations__ = {
        name: annotation
        for name, annotation in getattr(fn, "__annotations__", {}).items()
        if name not in names
    }


def resolve(
    container: containers.Container, marker: Any
) -> providers.Provider[Any] | None:
    """Return the container's provider for a ``Provide[...]`` marker, or None.

    Uses dependency-injector's own marker resolution, so a class-level provider
    (``Container.db``), a string id (``"db"``, ``"infra.cache"``) and modifiers
    resolve exactly as ``container.wire()`` would.
    """
    return _providers_map(container).resolve_provider(marker.provider, marker.modifier)


def unresolved_view_markers(container: containers.Container) -> list[str]:
    """Describe each marker of the URLconf's views that ``container`` cannot resolve.

    Returns an empty list when the URLconf cannot be imported: Django's own URL
    checks and every request report that.
    """
    try:
        patterns = get_resolver().url_patterns
    except Exception:
        return []
    return [
        problem
        for view in _views(patterns)
        for problem in unresolved_injections(container, view)
    ]


def unresolved_injections(
    container: containers.Container, view: Callable[..., Any]
) -> list[str]:
    """Describe each marker of an ``@inject`` view that ``container`` cannot resolve.

    ``view`` may be wrapped by other decorators; a class-based view's handler
    methods are inspected. Returns an empty list for a view without markers.
    """
    candidates: list[Any] = [view, _api_view_function(view)]
    view_class = getattr(view, "view_class", None) or getattr(view, "cls", None)
    if view_class is not None:
        candidates += [getattr(view_class, name, None) for name in dir(view_class)]
    problems = []
    for candidate in candidates:
        for injection in _injections_of(candidate):
            if resolve(container, injection.marker) is None:
                problems.append(injection._unresolved_message(container))
    return problems


def _views(
    patterns: Iterable[URLPattern | URLResolver],
) -> Iterator[Callable[..., Any]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns)
        else:
            yield pattern.callback


def _injections_of(function: Any) -> tuple[_Injection, ...]:
    seen = 0
    while function is not None and seen < 20:  # bounded: __wrapped__ chains can loop
        injections: tuple[_Injection, ...] | None = getattr(
            function, "__lifespan_di_injections__", None
        )
        if injections is not None:
            return injections
        function = getattr(function, "__wrapped__", None)
        seen += 1
    return ()


_maps: weakref.WeakKeyDictionary[containers.Container, wiring.ProvidersMap] = (
    weakref.WeakKeyDictionary()
)


def _providers_map(container: containers.Container) -> wiring.ProvidersMap:
    providers_map = _maps.get(container)
    if providers_map is None:
        providers_map = _maps[container] = wiring.ProvidersMap(container)
    return providers_map


def _api_view_function(view: Any) -> Callable[..., Any] | None:
    """Return the function that DRF's ``@api_view`` turned into ``view``, or None."""
    view_class = getattr(view, "cls", None)
    for method in getattr(view_class, "http_method_names", ()):
        handler: Any = vars(view_class).get(method)
        code = getattr(handler, "__code__", None)
        if (
            code is not None
            and handler.__qualname__.startswith("api_view.")
            and "func" in code.co_freevars
        ):
            # DRF keeps the function only in the closure of the handler it installs
            # for each allowed method (rest_framework/decorators.py).
            cell = handler.__closure__[code.co_freevars.index("func")]
            return cast("Callable[..., Any]", cell.cell_contents)
    return None


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    owner = f"{fn.__module__}.{fn.__qualname__}"
    try:
        return inspect.signature(fn, eval_str=True)
    except NameError:
        # Annotations naming types imported under TYPE_CHECKING cannot be evaluated;
        # markers in defaults still work, an Annotated marker would be lost.
        signature = inspect.signature(fn)
        for parameter in signature.parameters.values():
            if (
                isinstance(parameter.annotation, str)
                and "Provide" in parameter.annotation
            ):
                msg = (
                    f"Cannot inject parameter {parameter.name!r} of {owner}: its "
                    f"annotation {parameter.annotation!r} cannot be evaluated. Import "
                    "the types it names at runtime, or put the marker in the default "
                    "value."
                )
                raise InjectionError(msg) from None
        return signature


def _read_injections(
    fn: Callable[..., Any], signature: inspect.Signature
) -> tuple[_Injection, ...]:
    owner = f"{fn.__module__}.{fn.__qualname__}"
    injections = []
    positional = 0
    for parameter in signature.parameters.values():
        marker = _marker_of(parameter)
        if marker is not None:
            injections.append(_checked(parameter, marker, positional, owner))
        if parameter.kind in (
            parameter.POSITIONAL_ONLY,
            parameter.POSITIONAL_OR_KEYWORD,
        ):
            positional += 1
    if not injections:
        msg = (
            f"Cannot inject into {owner}: none of its parameters has a Provide[...] "
            "or Provider[...] marker. Add one, e.g. "
            "client=Provide[Container.httpx_client], or remove @inject."
        )
        raise InjectionError(msg)
    return tuple(injections)


def _marker_of(parameter: inspect.Parameter) -> Any:
    if get_origin(parameter.annotation) is Annotated:
        for metadata in get_args(parameter.annotation)[1:]:
            if isinstance(metadata, _MARKERS):
                return metadata
    if isinstance(parameter.default, _MARKERS):
        return parameter.default
    return None


def _checked(
    parameter: inspect.Parameter, marker: Any, position: int, owner: str
) -> _Injection:
    where = f"parameter {parameter.name!r} of {owner}"
    if isinstance(marker, _CLOSING):
        msg = (
            f"Cannot inject {where}: Closing[...] is not supported. It shuts down "
            "every resource reachable from the provider, app-wide ones included, "
            "after each call. Use Provide[...]: lifespan_di closes app resources at "
            "shutdown."
        )
        raise InjectionError(msg)
    if parameter.kind in (
        parameter.POSITIONAL_ONLY,
        parameter.VAR_POSITIONAL,
        parameter.VAR_KEYWORD,
    ):
        msg = (
            f"Cannot inject {where}: it cannot be passed by keyword. "
            "Make it a normal parameter."
        )
        raise InjectionError(msg)
    if not isinstance(marker.provider, providers.Provider | str):
        msg = (
            f"Cannot inject {where}: {marker!r} names neither a provider nor a "
            "provider id. Use Provide[Container.httpx_client] or "
            "Provide['httpx_client']."
        )
        raise InjectionError(msg)
    keyword_only = parameter.kind == parameter.KEYWORD_ONLY
    return _Injection(
        parameter.name, marker, sys.maxsize if keyword_only else position, owner
    )


def _uses_app_resource(provider: providers.Provider[Any]) -> bool:
    return any(
        isinstance(candidate, providers.Resource)
        for candidate in (provider, *provider.traverse())
    )
