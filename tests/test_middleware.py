"""request.state: the State mapping and LifespanStateMiddleware, sync and async."""

from __future__ import annotations

from collections.abc import AsyncIterator
from io import BytesIO
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import AsyncRequestFactory, RequestFactory

from lifespan_di import State, container_lifespan, get_container
from lifespan_di.core.lifespan import LIFESPAN_STATE_KEY, ContainerLifespan
from lifespan_di.exceptions import LifespanNotRunningError, StateKeyError
from lifespan_di.middleware import LifespanStateMiddleware
from lifespan_di.state import LifespanASGIRequest


@pytest.fixture
async def running() -> AsyncIterator[dict[str, Any]]:
    """The project's container, started for the test."""
    async with container_lifespan(get_container()) as state:
        yield state


class TestState:
    def test_item_and_attribute_access(self) -> None:
        """A value is readable as an item and as an attribute."""
        client = object()

        state = State({"httpx_client": client})

        assert state["httpx_client"] is client
        assert state.httpx_client is client

    def test_nested_container_names(self) -> None:
        """A nested container's resource is readable by dotted key and by attribute chain."""
        cache = object()

        state = State({"infra.cache": cache})

        assert state["infra.cache"] is cache
        assert state.infra.cache is cache

    def test_marker_is_hidden(self) -> None:
        """The lifespan marker is neither listed nor readable."""
        state = State({"db": 1, LIFESPAN_STATE_KEY: object()})

        assert list(state) == ["db"]
        assert LIFESPAN_STATE_KEY not in state
        assert len(state) == 1

    def test_missing_key_lists_available_keys(self) -> None:
        """A missing name raises StateKeyError listing the available names, without the marker."""
        state = State({"db": 1, "cache": 2, LIFESPAN_STATE_KEY: object()})

        with pytest.raises(StateKeyError) as caught:
            state["dbb"]

        assert str(caught.value).startswith(
            "request.state has no 'dbb'. Available: 'cache', 'db'."
        )
        assert isinstance(caught.value, KeyError)

    def test_missing_attribute_is_an_attribute_error(self) -> None:
        """A missing attribute raises an AttributeError, so getattr() with a default works."""
        state = State({"db": 1})

        assert getattr(state, "nope", "default") == "default"
        assert state.get("nope") is None
        with pytest.raises(AttributeError, match="Available: 'db'"):
            state.nope  # noqa: B018

    def test_assignment_and_deletion(self) -> None:
        """Values can be set and deleted by item and attribute."""
        state = State({})

        state["a"] = 1
        state.b = 2
        del state["a"]

        assert dict(state) == {"b": 2}
        del state.b
        assert dict(state) == {}

    def test_the_lifespans_own_dict_is_copied_before_any_change(self) -> None:
        """Wrapping a dict every request reads: deleting or writing through a
        namespace changes a copy, and the state keeps showing its own changes."""
        lifespan = ContainerLifespan(None)
        shared = lifespan.state
        shared.update({LIFESPAN_STATE_KEY: lifespan, "db": 1, "infra.cache": 2})
        before = dict(shared)
        state = State.of_request(shared)

        infra = state.infra
        infra.extra = 3
        del state["db"]

        assert shared == before
        assert (state["infra.extra"], infra.cache, "db" in state) == (3, 2, False)

    def test_copies_are_independent(self) -> None:
        """Writes to one State never reach another built from the same source."""
        source = {"db": 1}
        first, second = State(source), State(source)

        first["scratch"] = "mine"

        assert "scratch" not in second
        assert source == {"db": 1}


class TestMiddleware:
    async def test_sync_request_reads_running_state(
        self, running: dict[str, Any]
    ) -> None:
        """A sync middleware chain gives the request the running lifespan's state."""
        seen: dict[str, Any] = {}

        def view(request: HttpRequest) -> HttpResponse:
            seen["client"] = request.state["httpx_client"]  # type: ignore[attr-defined]
            return HttpResponse()

        middleware = LifespanStateMiddleware(view)
        middleware(RequestFactory().get("/"))

        assert seen["client"] is running["httpx_client"]
        assert not iscoroutinefunction(middleware)

    async def test_async_request_prefers_scope_state(
        self, running: dict[str, Any]
    ) -> None:
        """An async chain uses the server's per-request state when it carries the lifespan marker."""
        seen: dict[str, Any] = {}

        async def view(request: HttpRequest) -> HttpResponse:
            seen["value"] = request.state["from_scope"]  # type: ignore[attr-defined]
            return HttpResponse()

        middleware = LifespanStateMiddleware(view)
        request = AsyncRequestFactory().get("/")
        request.scope["state"] = {**running, "from_scope": "yes"}  # type: ignore[attr-defined]

        await middleware(request)

        assert iscoroutinefunction(middleware)
        assert seen["value"] == "yes"

    async def test_each_request_gets_its_own_copy(
        self, running: dict[str, Any]
    ) -> None:
        """An assignment to request.state in one request is not seen by the next."""
        seen: list[bool] = []

        async def view(request: HttpRequest) -> HttpResponse:
            state = request.state  # type: ignore[attr-defined]
            seen.append("scratch" in state)
            state["scratch"] = True
            return HttpResponse()

        middleware = LifespanStateMiddleware(view)
        await middleware(AsyncRequestFactory().get("/"))
        await middleware(AsyncRequestFactory().get("/"))

        assert seen == [False, False]
        assert "scratch" not in running

    async def test_the_lifespans_own_state_dict_is_copied(
        self, running: dict[str, Any]
    ) -> None:
        """A request whose scope state is the lifespan's own dict writes to a copy, never to that dict."""

        async def view(request: HttpRequest) -> HttpResponse:
            request.state["scratch"] = True  # type: ignore[attr-defined]
            return HttpResponse()

        request = AsyncRequestFactory().get("/")
        request.scope["state"] = running  # type: ignore[attr-defined]

        await LifespanStateMiddleware(view)(request)

        assert "scratch" not in running

    async def test_a_servers_copy_is_used_without_copying(
        self, running: dict[str, Any]
    ) -> None:
        """A request's own copy of the state, as spec-compliant servers pass, is wrapped as it is."""

        async def view(request: HttpRequest) -> HttpResponse:
            request.state["scratch"] = True  # type: ignore[attr-defined]
            return HttpResponse()

        request = AsyncRequestFactory().get("/")
        own_copy = dict(running)
        request.scope["state"] = own_copy  # type: ignore[attr-defined]

        await LifespanStateMiddleware(view)(request)

        assert own_copy["scratch"] is True

    def test_no_lifespan_raises_a_clear_error(self) -> None:
        """Without a lifespan, reading request.state raises an ImproperlyConfigured that explains the fix."""
        captured: dict[str, BaseException] = {}

        def view(request: HttpRequest) -> HttpResponse:
            try:
                request.state["httpx_client"]  # type: ignore[attr-defined]
            except LifespanNotRunningError as error:
                captured["error"] = error
            return HttpResponse()

        LifespanStateMiddleware(view)(RequestFactory().get("/"))

        error = captured["error"]
        assert isinstance(error, ImproperlyConfigured)
        assert str(error).startswith(
            "Cannot use request.state['httpx_client']: no lifespan is running"
        )
        assert "--lifespan on" in str(error)

    def test_no_lifespan_attribute_access_and_iteration_raise(self) -> None:
        """Attribute access and iteration raise the same error, never an empty state."""
        state = LifespanStateMiddleware(lambda request: HttpResponse())
        request = RequestFactory().get("/")
        state(request)

        with pytest.raises(
            LifespanNotRunningError, match=r"request\.state\.httpx_client"
        ):
            request.state.httpx_client  # type: ignore[attr-defined]  # noqa: B018
        with pytest.raises(LifespanNotRunningError):
            list(request.state)  # type: ignore[attr-defined]

    def test_view_not_touching_state_works_without_lifespan(self) -> None:
        """A view that never reads request.state is unaffected when no lifespan runs."""
        middleware = LifespanStateMiddleware(lambda request: HttpResponse("fine"))

        response = middleware(RequestFactory().get("/"))

        assert response.content == b"fine"

    def test_values_set_in_request_are_readable_without_lifespan(self) -> None:
        """Without a lifespan, values the request set itself can still be read back."""
        middleware = LifespanStateMiddleware(lambda request: HttpResponse())
        request = RequestFactory().get("/")
        middleware(request)

        request.state["request_id"] = "abc"  # type: ignore[attr-defined]

        assert request.state["request_id"] == "abc"  # type: ignore[attr-defined]
        assert request.state.request_id == "abc"  # type: ignore[attr-defined]
        assert "no lifespan" in repr(request.state)  # type: ignore[attr-defined]


class TestHandlerRequest:
    async def test_state_without_the_middleware(self, running: dict[str, Any]) -> None:
        """The handler's request reads the running lifespan's state with no middleware."""
        scope = AsyncRequestFactory().get("/").scope  # type: ignore[attr-defined]

        request = LifespanASGIRequest(scope, BytesIO())

        assert request.state["httpx_client"] is running["httpx_client"]

    async def test_state_is_built_once_per_request(
        self, running: dict[str, Any]
    ) -> None:
        """Every read of the handler request's state gives the same State: a write is seen by later reads."""
        scope = AsyncRequestFactory().get("/").scope  # type: ignore[attr-defined]
        request = LifespanASGIRequest(scope, BytesIO())

        request.state["scratch"] = 1

        assert request.state is request.state
        assert request.state["scratch"] == 1
        assert "scratch" not in running

    def test_state_without_a_lifespan_explains_why(self) -> None:
        """Without middleware or lifespan, reading the handler's request.state raises LifespanNotRunningError, not AttributeError."""
        scope = AsyncRequestFactory().get("/").scope  # type: ignore[attr-defined]
        request = LifespanASGIRequest(scope, BytesIO())

        with pytest.raises(
            LifespanNotRunningError, match=r"request\.state\.httpx_client"
        ):
            request.state.httpx_client  # noqa: B018

    def test_the_middleware_assignment_wins(self) -> None:
        """LifespanStateMiddleware's request.state replaces the handler request's own."""
        scope = AsyncRequestFactory().get("/").scope  # type: ignore[attr-defined]
        request = LifespanASGIRequest(scope, BytesIO())
        mine = State({"x": 1})

        request.state = mine

        assert request.state is mine
