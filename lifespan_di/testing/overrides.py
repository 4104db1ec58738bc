"""``override``: replace a provider of the running container for a block or a call.

The fake reaches everything that resolves the provider while the block runs:
``inject``, the Singletons built on it (replaced by fresh copies) and the running
lifespan's state, which the lifespan test clients copy into each request. Leaving
the block undoes every step, newest first.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from dependency_injector import containers, providers

from lifespan_di.compat.dependency_injector import resolve_marker
from lifespan_di.conf import get_container
from lifespan_di.core.graph import named_providers
from lifespan_di.core.lifespan import running_lifespan
from lifespan_di.exceptions import ConfigurationError

__all__ = ["Override", "override"]

F = TypeVar("F", bound=Callable[..., Any])


def override(provider: providers.Provider[Any], fake: object) -> Override:
    """Replace a provider of the running container while a block or function runs.

    ``provider`` is a class-level provider (``Container.httpx_client``), resolved to
    the running container's (or else the configured container's) own provider, or
    a provider of a container instance. ``fake`` is a provider, or any other object,
    used as ``providers.Object(fake)``. For the block, ``inject``, ``request.state``
    of requests sent by the lifespan test clients and every provider built on it
    see the fake: Singletons that depend on it are replaced by fresh ones, and the
    running lifespan's state holds the fake's value. Everything is restored after.

    Use it as ``with`` / ``async with``, or decorate a sync or async function:

    ```python
    with override(Container.httpx_client, fake_client):
        response = client.get("/fetch/")
    ```

    Raises:
        ConfigurationError: ``fake`` is a ``providers.Resource``: nothing would
            start or shut it down. Pass the object, or a Factory or Singleton.
    """
    return Override(provider, fake)


class Override:
    """A provider replaced by a fake; returned by ``override()``, see there."""

    def __init__(self, provider: providers.Provider[Any], fake: object) -> None:
        if isinstance(fake, providers.Resource):
            msg = (
                f"Cannot override {provider!r} with the Resource {fake!r}: override "
                "does not start or shut down resources. Pass the object itself, or a "
                "Factory or Singleton that builds it."
            )
            raise ConfigurationError(msg)
        self.provider = provider
        self.fake: providers.Provider[Any] = (
            fake if isinstance(fake, providers.Provider) else providers.Object(fake)
        )
        self._undo: list[Callable[[], None]] | None = None

    def __enter__(self) -> providers.Provider[Any]:
        target, publish = self._apply()
        if publish is not None:
            try:
                publish(self._not_awaitable(target()))
            except BaseException:
                self._restore()
                raise
        return target

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._restore()

    async def __aenter__(self) -> providers.Provider[Any]:
        target, publish = self._apply()
        if publish is not None:
            try:
                value = target()
                publish(await value if inspect.isawaitable(value) else value)
            except BaseException:
                self._restore()
                raise
        return target

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._restore()

    def __call__(self, fn: F) -> F:
        """Decorate ``fn`` so that each call runs with the override."""
        if iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with Override(self.provider, self.fake):
                    return await fn(*args, **kwargs)

            return cast("F", async_wrapper)

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            with Override(self.provider, self.fake):
                return fn(*args, **kwargs)

        return cast("F", sync_wrapper)

    def _apply(
        self,
    ) -> tuple[providers.Provider[Any], Callable[[Any], None] | None]:
        """Override the provider and the Singletons built on it.

        Returns the container's provider, and, when the running lifespan's state
        holds it, a function that puts the fake's value there for the block.
        """
        if self._undo is not None:
            msg = f"Cannot enter the override of {self.provider!r} twice at once."
            raise RuntimeError(msg)
        container = get_container()
        target = _instance_provider(container, self.provider)
        undo = self._undo = []
        target.override(self.fake)
        undo.append(target.reset_last_overriding)
        # A Singleton keeps what it built from the original. A fresh copy overrides
        # it for the block, so that its own instance is back, unchanged, after.
        for singleton in _dependent_singletons(container, target):
            fresh = type(singleton)(
                singleton.provides, *singleton.args, **singleton.kwargs
            )
            fresh.add_attributes(**singleton.attributes)
            singleton.override(fresh)
            undo.append(singleton.reset_last_overriding)
        lifespan = running_lifespan(container)
        if lifespan is None:
            return target, None
        state = lifespan.state
        names = [
            name
            for name, provider in named_providers(container)
            if provider is target and name in state
        ]
        if not names:
            return target, None

        def publish(value: Any) -> None:
            saved = {name: state[name] for name in names}
            state.update(dict.fromkeys(names, value))

            def restore() -> None:
                if lifespan.running:  # a state that has shut down is not restored
                    state.update(saved)

            undo.append(restore)

        return target, publish

    def _not_awaitable(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            _discard(value)
            msg = (
                f"Cannot override {self.provider!r} with `with`: the fake provides "
                "an awaitable. Use `async with override(...)`."
            )
            raise TypeError(msg)
        return value

    def _restore(self) -> None:
        undo, self._undo = self._undo or [], None
        for step in reversed(undo):
            step()


# --- override helpers ---------------------------------------------------------------


def _instance_provider(
    container: containers.Container, provider: providers.Provider[Any]
) -> providers.Provider[Any]:
    """Map a class-level provider to the container's; other providers stay as given."""
    marker = _Marker(provider)
    resolved = resolve_marker(container, marker)
    return resolved if resolved is not None else provider


@dataclass
class _Marker:
    """The shape of a ``Provide[...]`` marker, for ``resolve_marker``."""

    provider: providers.Provider[Any]
    modifier: None = None


def _dependent_singletons(
    container: containers.Container, target: providers.Provider[Any]
) -> list[providers.BaseSingleton[Any]]:
    return [
        singleton
        for singleton in container.traverse(types=[providers.BaseSingleton])
        if singleton is not target
        and singleton.last_overriding is None  # another override wins anyway
        and _reaches(singleton, target)
    ]


def _reaches(
    provider: providers.Provider[Any], target: providers.Provider[Any]
) -> bool:
    related: Iterable[providers.Provider[Any]] = provider.traverse()
    return any(candidate is target for candidate in related)


def _discard(awaitable: Awaitable[Any]) -> None:
    if inspect.iscoroutine(awaitable):
        awaitable.close()  # never awaited: close it rather than warn
    elif isinstance(awaitable, asyncio.Future):
        awaitable.cancel()
