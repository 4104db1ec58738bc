"""``request.state``: the lifespan state with item and attribute access, per request."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, ClassVar, overload

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest

from lifespan_di.core.lifespan import (
    LIFESPAN_STATE_KEY,
    ContainerLifespan,
    running_lifespan,
)
from lifespan_di.exceptions import LifespanNotRunningError, StateKeyError
from lifespan_di.providers import RequestResource, request_resources

__all__ = [
    "LifespanASGIRequest",
    "State",
    "UnavailableState",
    "request_state",
    "scope_state",
]


class State(MutableMapping[str, Any]):
    """A request's own copy of the lifespan state.

    Read a started resource by its provider name, as an item or an attribute:

    ```python
    request.state["httpx_client"]
    request.state.httpx_client
    request.state["infra.cache"]    # a resource of a nested container
    request.state.infra.cache
    ```

    A ``RequestResource`` of the container is read the same way: it is opened on
    first read and closed when the request is over. An asynchronous one needs
    ``await request.state.aget("session")`` on the event loop. Iterating the state
    lists the app-scoped values only, so that it never opens request resources.

    Assignments stay in this request. A missing name raises ``StateKeyError``
    (a ``KeyError`` and an ``AttributeError``) listing the names available.
    """

    __slots__ = ("_data", "_prefix")

    _label: ClassVar[str] = "request.state"
    """How messages name this state: a consumer's is ``self.state``."""
    _data: dict[str, Any]
    _prefix: str
    """What this state's keys start with: a nested container's namespace sets one."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        _set_data(self, dict(data or {}))  # not self._data =: that writes an item
        _set_prefix(self, "")

    @classmethod
    def of_request(cls, data: dict[str, Any]) -> State:
        """Wrap ``data`` as it is: a server's per-request copy of the lifespan state."""
        state = cls.__new__(cls)
        _set_data(state, data)
        _set_prefix(state, "")
        return state

    @property
    def _scoped(self) -> Mapping[str, RequestResource[Any]]:
        """The request resources of the lifespan this state comes from."""
        lifespan = self._data.get(LIFESPAN_STATE_KEY)
        if isinstance(lifespan, ContainerLifespan):
            return request_resources(lifespan.container)
        return {}

    def __getitem__(self, key: str) -> Any:
        try:
            return self._data[self._prefix + key]
        except KeyError:
            provider = self._scoped.get(self._prefix + key)
            if provider is None:
                raise self._missing(key) from None
        return provider()

    async def aget(self, key: str) -> Any:
        """Return ``self[key]``, opening an asynchronous request resource if needed.

        Async views read an asynchronous ``RequestResource`` with
        ``await request.state.aget("session")``: ``request.state["session"]`` cannot
        await its opening. Every other value is returned as by ``self[key]``.
        """
        provider = self._scoped.get(self._prefix + key)
        if provider is None or self._prefix + key in self._data:
            return self[key]
        return await provider.async_()

    def __setitem__(self, key: str, value: Any) -> None:
        self._own_data()[self._prefix + key] = value

    def __delitem__(self, key: str) -> None:
        try:
            del self._own_data()[self._prefix + key]
        except KeyError:
            raise self._missing(key) from None

    def _own_data(self) -> dict[str, Any]:
        """The data to write to; first a copy if it is a dict every request reads.

        Such a dict comes from a server that passes every request the lifespan's own
        dict instead of a copy (against the ASGI spec). Checked on writing, not on
        wrapping: requests read their state far more often than they write to it.
        """
        data = self._data
        publisher = data.get(LIFESPAN_STATE_KEY)
        if (
            isinstance(publisher, ContainerLifespan)
            and publisher.shared_dicts.get(id(data)) is data
        ):
            data = dict(data)
            _set_data(self, data)
        return data

    def __iter__(self) -> Iterator[str]:
        start = len(self._prefix)
        return (
            key[start:]
            for key in self._data
            if key.startswith(self._prefix) and key != LIFESPAN_STATE_KEY
        )

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        return (
            isinstance(key, str)
            and key != LIFESPAN_STATE_KEY
            and self._prefix + key in self._data
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        key = self._prefix + name
        if key in self._data:
            return self._data[key]
        provider = self._scoped.get(key)
        if provider is not None:
            return provider()
        nested = key + "."
        if any(
            existing.startswith(nested) for existing in (*self._data, *self._scoped)
        ):
            namespace = type(self).of_request(self._own_data())
            _set_prefix(namespace, nested)
            return namespace
        raise self._missing(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        del self[name]

    def __repr__(self) -> str:
        return f"State({dict(self.items())!r})"

    def _missing(self, key: str) -> StateKeyError:
        start = len(self._prefix)
        scoped = [
            f"{name[start:]!r} (per request)"
            for name in sorted(self._scoped)
            if name.startswith(self._prefix)
        ]
        available = ", ".join([repr(name) for name in sorted(self)] + scoped)
        msg = (
            f"{self._label} has no {self._prefix + key!r}. Available: "
            f"{available or 'none'}. Each resource of the container is published "
            "under its provider name (a nested container's as 'infra.cache')."
        )
        return StateKeyError(msg)


# The slots' own setters (assigning an attribute writes an item): twice as fast as
# ``object.__setattr__``, and every request that reads its state sets them.
_set_data = State.__dict__["_data"].__set__
_set_prefix = State.__dict__["_prefix"].__set__
_new_state = object.__new__


class UnavailableState(State):
    """The state of a request served while no lifespan runs: every read raises.

    Raises ``LifespanNotRunningError`` (an ``ImproperlyConfigured``) explaining why
    and how to fix it, instead of a bare ``KeyError`` or a silently empty state.
    Views that never touch ``request.state`` are unaffected.
    """

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key in self._data:  # set earlier in this request
            return self._data[key]
        what = f"{self._label}[{key!r}]"
        raise self._not_running(what)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in self._data:
            return self._data[name]
        what = f"{self._label}.{name}"
        raise self._not_running(what)

    def __iter__(self) -> Iterator[str]:
        raise self._not_running(self._label)

    def __contains__(self, key: object) -> bool:
        raise self._not_running(self._label)

    def _not_running(self, what: str) -> LifespanNotRunningError:
        """Build the error for reading ``what`` (a consumer's says so)."""
        return LifespanNotRunningError.accessing(what)

    def __repr__(self) -> str:
        return "<UnavailableState: no lifespan is running in this process>"


def request_state(request: HttpRequest) -> State:
    """Return a new ``State`` for ``request``: ``scope_state()`` of its ASGI scope."""
    return scope_state(getattr(request, "scope", None))


def scope_state(
    scope: Mapping[str, Any] | None,
    available: type[State] = State,
    unavailable: type[UnavailableState] = UnavailableState,
) -> State:
    """Return a new ``State`` (an ``available``) for the connection of ``scope``.

    The server's per-request copy of the lifespan state is used when it carries
    lifespan_di's marker: wrapped as it is (should it be a dict every request reads,
    the ``State`` copies it before its first write). Otherwise (a
    server without ``state``, such as daphne, or Django's test client) the state of
    the lifespan running in this process is used, and when there is none, a state
    that explains the problem on first read (an ``unavailable``).
    """
    if scope is not None:
        server_state = scope.get("state")
        if server_state is not None and LIFESPAN_STATE_KEY in server_state:
            return available.of_request(server_state)
    lifespan = running_lifespan()
    if lifespan is not None:
        return available(lifespan.state)
    return unavailable()


class _StateOnFirstRead:
    """``request.state``: built on first read, then kept as the request's attribute.

    What ``functools.cached_property`` does, without the lock its Python 3.11 version
    takes and without making the request's ``__dict__``. Every request that reads its
    state runs this once, so ``scope_state()``'s usual case is inlined: a server's
    per-request copy, wrapped as it is (fewer instructions than the calls).
    """

    @overload
    def __get__(self, request: None, owner: type[Any]) -> _StateOnFirstRead: ...
    @overload
    def __get__(self, request: ASGIRequest, owner: type[Any]) -> State: ...
    def __get__(
        self, request: ASGIRequest | None, owner: type[Any]
    ) -> State | _StateOnFirstRead:
        if request is None:
            return self
        server_state = request.scope.get("state")
        if server_state is not None and LIFESPAN_STATE_KEY in server_state:
            state = _new_state(State)
            _set_data(state, server_state)
            _set_prefix(state, "")
        else:
            state = scope_state(request.scope)
        # The instance's attribute hides this descriptor from now on.
        request.state = state  # type: ignore[attr-defined]
        return state


class LifespanASGIRequest(ASGIRequest):
    """Django's ``ASGIRequest`` with ``request.state``, built on first read.

    So views read the lifespan state under ``LifespanASGIHandler``, which needs no
    ``LifespanStateMiddleware``. An assignment to ``request.state`` takes precedence
    (the instance's attribute hides the class's).
    """

    state = _StateOnFirstRead()
    """This request's lifespan state, as ``LifespanStateMiddleware`` sets it."""
