"""``RequestResource``: a resource opened on first use in a request, closed at its end.

dependency-injector's own per-request tools do not fit Django (see "What lifespan_di
relies on" in docs/how-it-works.md): ``Closing[...]`` shuts down the app-wide
resources the request resource depends on, and ``ContextLocalResource`` keeps its
instance in a ContextVar that the child task and worker thread Django runs a view in
set where the handler cannot see or close it; its teardown never receives the view's
exception either.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, ClassVar, TypeVar, overload

from asgiref.sync import sync_to_async
from dependency_injector import containers, providers, resources

from lifespan_di.compat.channels import calling_consumer
from lifespan_di.core import forms
from lifespan_di.core.graph import named_providers
from lifespan_di.core.lifespan import lifespan_loop
from lifespan_di.core.loop import call_from_sync, running_loop
from lifespan_di.entry import Entry
from lifespan_di.exceptions import RequestScopeError
from lifespan_di.scope import CURRENT, RequestScope, current_scope

__all__ = ["RequestResource", "request_resources"]

T = TypeVar("T")


class RequestResource(providers.Provider[T]):
    """A resource with one instance per request, closed when the request is over.

    Declare it like ``providers.Resource``, in any form ``Resource`` accepts (a
    generator or async generator function, a sync or async context manager, a
    ``resources.Resource`` subclass, a function), depending freely on app-scoped
    resources:

    ```python
    class Container(containers.DeclarativeContainer):
        pool = providers.Resource(create_pool)
        session = RequestResource(open_session, pool=pool)
    ```

    The instance is created on first use within a request (``inject``,
    ``request.state``, or calling the provider) and shared by every use in that
    request, also across threads. When the response has been sent completely, or
    the client has gone, it is closed: a generator resumes after its ``yield`` (or
    receives the view's exception there, so it can roll back), a context manager's
    ``__exit__`` receives the exception. Request resources close newest first, and
    never close the app-scoped resources they depend on.

    Outside a request, open a scope with ``lifespan_di.request_scope()``.
    """

    __slots__ = ("_async", "_dependencies", "_kind", "_maker", "_name", "_provides")

    closes_with_view: ClassVar[bool] = False
    """Whether it closes as the view returns (``ViewResource``), before the response."""
    # Until one exists in the process, LifespanASGIHandler opens no request scope;
    # until a ViewResource does, it wraps no view.
    declared: ClassVar[bool] = False
    views_declared: ClassVar[bool] = False

    @overload
    def __init__(
        self,
        provides: type[resources.Resource[T]],
        *args: Any,
        **kwargs: Any,
    ) -> None: ...
    @overload
    def __init__(
        self,
        provides: type[resources.AsyncResource[T]],
        *args: Any,
        **kwargs: Any,
    ) -> None: ...
    @overload
    def __init__(
        self,
        provides: Callable[..., AbstractContextManager[T]],
        *args: Any,
        **kwargs: Any,
    ) -> None: ...
    @overload
    def __init__(
        self,
        provides: Callable[..., AbstractAsyncContextManager[T]],
        *args: Any,
        **kwargs: Any,
    ) -> None: ...
    @overload
    def __init__(
        self, provides: Callable[..., Iterator[T]], *args: Any, **kwargs: Any
    ) -> None: ...
    @overload
    def __init__(
        self, provides: Callable[..., AsyncIterator[T]], *args: Any, **kwargs: Any
    ) -> None: ...
    @overload
    def __init__(
        self, provides: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> None: ...
    @overload
    def __init__(
        self, provides: Callable[..., T], *args: Any, **kwargs: Any
    ) -> None: ...
    def __init__(self, provides: Any, *args: Any, **kwargs: Any) -> None:
        self._provides = provides
        self._kind = forms.generator_kind(provides)
        self._maker = providers.Callable(provides, *args, **kwargs)
        # dependency-injector takes a generator for a coroutine and switches the
        # Callable to async mode (2 µs per call); lifespan_di opens what it returns.
        self._maker.disable_async_mode()
        self._async = forms.is_async(provides)
        self._dependencies: tuple[RequestResource[Any], ...] | None = None
        self._name: str | None = None
        RequestResource.declared = True
        RequestResource.views_declared |= self.closes_with_view
        super().__init__()

    def __deepcopy__(self, memo: dict[int, Any] | None) -> RequestResource[T]:
        copied: RequestResource[T] | None = (memo or {}).get(id(self))
        if copied is not None:
            return copied
        copied = type(self)(
            self._provides,
            *providers.deepcopy(self._maker.args, memo),
            **providers.deepcopy(self._maker.kwargs, memo),
        )
        self._copy_overridings(copied, memo)
        return copied

    @property
    def provides(self) -> Any:
        """What the provider was declared with."""
        return self._provides

    @property
    def related(self) -> Iterator[providers.Provider[Any]]:
        """The providers this one depends on, for ``traverse()``."""
        yield from self._maker.related
        yield from super().related

    def _provide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        scope = _scope_or_raise(self)
        if self.closes_with_view and scope.view_returned:
            raise RequestScopeError.view_returned(self.name)
        entry = scope.get(self)
        if entry is not None and entry.done:
            return _value(entry)  # type: ignore[no-any-return]
        if self._async:
            return self._open_async_from_sync()
        entry, create = scope.claim(self, self._name or self.name)
        if not create:
            return _wait(entry)  # type: ignore[no-any-return]
        try:
            for dependency in self._dependencies or self.dependencies:
                dependency()
            opening = forms.open_sync(self._maker(), self._kind)
        except BaseException as error:
            scope.failed(self, entry, error)
            raise
        in_thread = running_loop() is None
        scope.opened(entry, opening, in_thread=in_thread, view=self.closes_with_view)
        return opening[0]  # type: ignore[no-any-return]

    def async_(self, *args: Any, **kwargs: Any) -> Awaitable[T]:
        """Return the request's instance, opening it (asynchronously) on first use."""
        return self._aget()

    async def _aget(self) -> T:
        if self.last_overriding is not None:
            # async_() is __call__ for dependency-injector's providers; an overriding
            # request resource (the running instance's) opens asynchronously.
            result = self.last_overriding.async_()
            if inspect.isawaitable(result):
                result = await result
            return result  # type: ignore[no-any-return]
        scope = CURRENT.get() or _scope_or_raise(self)
        if self.closes_with_view and scope.view_returned:
            raise RequestScopeError.view_returned(self.name)
        entry, create = scope.claim(self, self._name or self.name)
        if not create:
            if entry.done:
                return _value(entry)  # type: ignore[no-any-return]
            return await _await(entry)  # type: ignore[no-any-return]
        try:
            for dependency in self._dependencies or self.dependencies:
                await dependency.async_()
            if self._async:
                opening = await forms.aopen(self._maker(), self._kind)
                in_thread = False
            else:
                # A sync resource may block, or use Django's ORM, which refuses
                # the event loop: it opens, and closes, in the request's thread.
                opening = await forms.aopen_in_thread(self._maker, self._kind)
                in_thread = opening[1] not in forms.ASYNC_KINDS
        except BaseException as error:
            scope.failed(self, entry, error)
            raise
        scope.opened(entry, opening, in_thread=in_thread, view=self.closes_with_view)
        return opening[0]  # type: ignore[no-any-return]

    def _open_async_from_sync(self) -> T:
        if running_loop() is not None:
            raise RequestScopeError.async_on_loop(self.name, calling_consumer())
        # A sync view runs in a worker thread: open the resource on the request's
        # event loop; a Celery task or a thread of a sync block, on the lifespan's.
        # It is closed on the same loop (Entry.loop).
        return call_from_sync(lifespan_loop(), self._aget)

    @property
    def dependencies(self) -> tuple[RequestResource[Any], ...]:
        """The request resources this one depends on, opened before it."""
        if self._dependencies is None:
            reachable: list[providers.Provider[Any]] = list(self._maker.traverse())
            self._dependencies = tuple(
                candidate
                for candidate in reachable
                if isinstance(candidate, RequestResource) and candidate is not self
            )
        return self._dependencies

    @property
    def name(self) -> str:
        """The provider's name in its container, for messages and logs.

        Named by ``request_resources()`` when its container's lifespan is prepared;
        until then, the name of the callable it was declared with.
        """
        if self._name is None:
            return getattr(self._provides, "__qualname__", repr(self._provides))
        return self._name


_by_container: weakref.WeakKeyDictionary[
    containers.Container, dict[str, RequestResource[Any]]
] = weakref.WeakKeyDictionary()


def request_resources(
    container: containers.Container,
) -> Mapping[str, RequestResource[Any]]:
    """Return the container's request resources by name, and name each one.

    A nested container's are named ``"infra.session"``, as ``request.state`` reads
    them. Computed once per container.
    """
    found = _by_container.get(container)
    if found is None:
        found = {}
        for name, provider in named_providers(container):
            if isinstance(provider, RequestResource):
                found[name] = provider
                if provider._name is None:  # aliases: the first name is its own
                    provider._name = name
        _by_container[container] = found
    return found


def _scope_or_raise(provider: RequestResource[Any]) -> RequestScope:
    scope = current_scope()
    if scope is None:
        thread = threading.current_thread() is not threading.main_thread()
        raise RequestScopeError.no_scope(provider.name, thread, calling_consumer())
    return scope


def _value(entry: Entry) -> Any:
    if entry.error is not None:
        raise entry.error
    return entry.value


def _wait(entry: Entry) -> Any:
    if not entry.done:
        if running_loop() is not None:
            msg = (
                f"Cannot use the request resource {entry.name!r} here: another task "
                "of this request is still opening it. Await it: `await "
                "provider.async_()`."
            )
            raise RequestScopeError(msg)
        entry.wait()
    return _value(entry)


async def _await(entry: Entry) -> Any:
    if not entry.done:
        # Another task or thread of this request is opening it: wait off the loop.
        await sync_to_async(entry.wait, thread_sensitive=False)()
    return _value(entry)
