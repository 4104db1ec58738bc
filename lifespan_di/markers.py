"""``Provide[...]`` / ``Provider[...]`` markers: read from a function, checked early.

Markers are dependency-injector's own (``dependency_injector.wiring``). A marker is a
parameter's default or ``Annotated`` metadata; ``inject`` reads them once, when it
decorates, and rejects a misuse there rather than on the first request.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from difflib import get_close_matches
from typing import Annotated, Any, cast, get_args, get_origin

from dependency_injector import containers, providers, wiring

from lifespan_di.compat.dependency_injector import declarative_class
from lifespan_di.core.graph import container_name, named_providers
from lifespan_di.exceptions import InjectionError

__all__ = [
    "PROVIDER",
    "Injection",
    "Provide",
    "Provider",
    "describe_marker",
    "read_injections",
]

SHOWN_NAMES = 8
"""How many of a container's provider names a message lists."""

Provide = wiring.Provide
Provider = wiring.Provider

# At runtime these are classes; dependency-injector's stubs describe instances.
_PROVIDE = cast("type", wiring.Provide)
PROVIDER = cast("type", wiring.Provider)
_CLOSING = cast("type", wiring.Closing)
_MARKERS = (_PROVIDE, PROVIDER, _CLOSING)


class Injection:
    """One injected parameter of a decorated function.

    ``position`` is its positional index, ``sys.maxsize`` if it is keyword-only: a
    caller passing that many positional arguments passed it explicitly.
    """

    __slots__ = ("marker", "name", "owner", "position")

    def __init__(self, name: str, marker: Any, position: int, owner: str) -> None:
        self.name = name
        self.marker = marker
        self.position = position
        self.owner = owner

    def unresolved_message(self, container: containers.Container) -> str:
        """Say that ``container`` has no provider for this parameter's marker.

        Suggest the container's providers whose names are closest to the marker's;
        if none is close, name some of them, and the container the marker's is of.
        """
        found = _name_of(self.marker.provider, container)
        runs = _container_class(container)
        # Two containers of one name (another module's): tell them apart.
        qualify = found is not None and _label(found[0]) == _label(runs)
        names = [
            name
            for name, _ in named_providers(container)
            if not name.rpartition(".")[2].startswith("__")  # providers.Self
        ]
        wanted = self.marker.provider if found is None else found[1]
        close = get_close_matches(wanted, names, n=3) if isinstance(wanted, str) else []
        kind = type(self.marker).__name__
        if close and isinstance(self.marker.provider, str):
            hint = " or ".join(f"{kind}[{name!r}]" for name in close)
            hint = f"Did you mean {hint}?"
        elif close:
            hint = " or ".join(f"{kind}[{_label(runs, qualify)}.{n}]" for n in close)
            hint = f"Did you mean {hint}?"
        else:
            more = len(names) - SHOWN_NAMES
            hint = "Its providers: " + (
                ", ".join(map(repr, names[:SHOWN_NAMES])) or "none"
            )
            hint += f" and {more} more." if more > 0 else "."
        if found is not None and not close:
            hint += (
                f" Is {_label(found[0], qualify)!r}, whose provider the marker names, "
                "the container you meant to run? Name it in LIFESPAN_DI['CONTAINER'] "
                "(or pass it to get_asgi_application())."
            )
        return (
            f"Cannot inject parameter {self.name!r} of {self.owner}: "
            f"{describe_marker(self.marker, container, qualify)} names no provider of "
            f"the container {_label(runs, qualify)!r}. {hint}"
        )


def describe_marker(
    marker: Any, container: containers.Container | None = None, qualify: bool = False
) -> str:
    """Show ``marker`` as its code reads: ``Provide[Container.db]``, ``Provide['db']``.

    The provider's name is looked up in ``container`` first, then in every
    declarative container class; ``qualify`` adds the container class's module.
    """
    kind = type(marker).__name__
    if isinstance(marker.provider, str) or marker.modifier is not None:
        return repr(marker)
    found = _name_of(marker.provider, container)
    if found is None:
        provides = getattr(marker.provider, "provides", None)
        shown = getattr(provides, "__qualname__", None) or repr(provides)
        return f"{kind}[<{type(marker.provider).__name__} of {shown}>]"
    owner, name = found
    return f"{kind}[{_label(owner, qualify)}.{name}]"


def _name_of(
    provider: object, container: containers.Container | None
) -> tuple[Any, str] | None:
    """Return the container (class) that has ``provider``, and its name there."""
    if isinstance(provider, str):
        return None
    owners: list[Any] = []
    if container is not None:
        owners += [_container_class(container), container]
    owners += _declarative_classes(containers.DeclarativeContainer)
    for owner in owners:
        for name, candidate in named_providers(owner):
            if candidate is provider:
                return owner, name
    return None


def _declarative_classes(base: type) -> list[type]:
    found: list[type] = []
    subclass: type
    for subclass in base.__subclasses__():
        found += [subclass, *_declarative_classes(subclass)]
    return found


def _container_class(container: containers.Container) -> Any:
    """The declarative class ``container`` was made from; itself without one."""
    return declarative_class(container) or container


def _label(owner: Any, qualify: bool = False) -> str:
    if not isinstance(owner, type):
        return container_name(owner)
    return f"{owner.__module__}.{owner.__qualname__}" if qualify else owner.__qualname__


def read_injections(
    fn: Callable[..., Any],
) -> tuple[inspect.Signature, tuple[Injection, ...]]:
    """Return ``fn``'s signature and its marked parameters.

    Raises:
        InjectionError: ``fn`` has no marker, or a marker cannot be used.
    """
    owner = f"{fn.__module__}.{fn.__qualname__}"
    signature = _signature(fn, owner)
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
            "or Provider[...] marker. Give each parameter to inject one as its "
            "default, `name=Provide[Container.name]` with a provider of your "
            "container, or remove @inject."
        )
        raise InjectionError(msg)
    return signature, tuple(injections)


def _signature(fn: Callable[..., Any], owner: str) -> inspect.Signature:
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
) -> Injection:
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
            "provider id. Name a provider of your container, "
            "`Provide[Container.name]`, or its name as a string, `Provide['name']`."
        )
        raise InjectionError(msg)
    keyword_only = parameter.kind == parameter.KEYWORD_ONLY
    return Injection(
        parameter.name, marker, sys.maxsize if keyword_only else position, owner
    )
