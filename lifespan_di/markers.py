"""``Provide[...]`` / ``Provider[...]`` markers: read from a function, checked early.

Markers are dependency-injector's own (``dependency_injector.wiring``). A marker is a
parameter's default or ``Annotated`` metadata; ``inject`` reads them once, when it
decorates, and rejects a misuse there rather than on the first request.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Annotated, Any, cast, get_args, get_origin

from dependency_injector import containers, providers, wiring

from lifespan_di.core.graph import container_name
from lifespan_di.exceptions import InjectionError

__all__ = ["PROVIDER", "Injection", "Provide", "Provider", "read_injections"]

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
        """Say that ``container`` has no provider for this parameter's marker."""
        return (
            f"Cannot inject parameter {self.name!r} of {self.owner}: {self.marker!r} "
            f"names no provider of the container {container_name(container)!r}. Use a "
            "provider of the container configured in LIFESPAN_DI['CONTAINER'], or its "
            "name as a string: Provide['httpx_client']."
        )


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
            "or Provider[...] marker. Add one, e.g. "
            "client=Provide[Container.httpx_client], or remove @inject."
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
            "provider id. Use Provide[Container.httpx_client] or "
            "Provide['httpx_client']."
        )
        raise InjectionError(msg)
    keyword_only = parameter.kind == parameter.KEYWORD_ONLY
    return Injection(
        parameter.name, marker, sys.maxsize if keyword_only else position, owner
    )
