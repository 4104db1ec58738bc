"""inject in every Django view style: CBVs, DRF, django-ninja, stacked decorators."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.auth.decorators import login_required
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncRequestFactory, RequestFactory
from django.urls import resolve
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import cache_page
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.generic import ListView, TemplateView
from ninja.testing import TestAsyncClient, TestClient
from rest_framework.test import APIRequestFactory

from lifespan_di import Provide, container_lifespan, inject
from lifespan_di.core.lifespan import ContainerLifespan
from tests.project import styles
from tests.project.containers import Container, Counter, Greeter

STYLE_URLS = "tests.project.style_urls"


@pytest.fixture
async def started() -> AsyncIterator[ContainerLifespan]:
    async with container_lifespan(Container()) as state:
        yield state


def received(response: Any) -> int:
    return int(json.loads(response.content)["id"])


def authenticated(request: HttpRequest) -> HttpRequest:
    """Give ``request`` a signed-in user, as AuthenticationMiddleware would."""
    user = SimpleNamespace(is_authenticated=True)

    async def auser() -> SimpleNamespace:
        return user

    request.user = user  # type: ignore[assignment]
    request.auser = auser  # type: ignore[assignment]
    return request


# Class-based views


class CounterView(View):
    @inject
    def get(
        self, request: HttpRequest, counter: Counter = Provide[Container.counter]
    ) -> JsonResponse:
        return JsonResponse({"id": id(counter)})


class ClientView(View):
    @inject
    async def get(
        self,
        request: HttpRequest,
        client: httpx.AsyncClient = Provide[Container.httpx_client],
    ) -> JsonResponse:
        return JsonResponse({"id": id(client)})


class SyncDispatchView(View):
    counter: Counter

    @inject
    def dispatch(
        self,
        request: HttpRequest,
        *args: Any,
        counter: Counter = Provide[Container.counter],
        **kwargs: Any,
    ) -> HttpResponse:
        self.counter = counter
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"id": id(self.counter)})


class AsyncDispatchView(View):
    client: httpx.AsyncClient

    @inject
    async def dispatch(
        self,
        request: HttpRequest,
        *args: Any,
        client: httpx.AsyncClient = Provide[Container.httpx_client],
        **kwargs: Any,
    ) -> HttpResponse:
        self.client = client
        response: HttpResponse = await super().dispatch(request, *args, **kwargs)
        return response

    async def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"id": id(self.client)})


class ContextView(TemplateView):
    template_name = "unused.html"  # the response is inspected, never rendered

    @inject
    def get_context_data(
        self, counter: Counter = Provide[Container.counter], **kwargs: Any
    ) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "counter": counter}


class AsyncTemplateView(TemplateView):
    template_name = "unused.html"

    @inject
    async def get(
        self,
        request: HttpRequest,
        client: httpx.AsyncClient = Provide[Container.httpx_client],
    ) -> HttpResponse:
        return self.render_to_response(self.get_context_data(client=client))


class GreeterListView(ListView):  # type: ignore[type-arg]
    template_name = "unused.html"

    @inject
    def get_queryset(
        self, greeter: Greeter = Provide[Container.greeter]
    ) -> list[Greeter]:
        return [greeter]


class TestClassBasedViews:
    async def test_view_sync_get(self, started: ContainerLifespan) -> None:
        """A sync View.get receives the started sync resource."""
        view = CounterView.as_view()

        response = await asyncio.to_thread(view, RequestFactory().get("/"))

        assert received(response) == id(started["counter"])

    async def test_view_async_get(self, started: ContainerLifespan) -> None:
        """An async View.get receives the started async resource, and the view stays async."""
        view = ClientView.as_view()

        response = await view(AsyncRequestFactory().get("/"))

        assert ClientView.view_is_async
        assert received(response) == id(started["httpx_client"])

    async def test_sync_dispatch(self, started: ContainerLifespan) -> None:
        """An injected sync dispatch receives the resource as a keyword-only parameter."""
        view = SyncDispatchView.as_view()

        response = await asyncio.to_thread(view, RequestFactory().get("/"))

        assert received(response) == id(started["counter"])

    async def test_async_dispatch(self, started: ContainerLifespan) -> None:
        """An injected async dispatch receives the started async resource."""
        view = AsyncDispatchView.as_view()

        response = await view(AsyncRequestFactory().get("/"))

        assert received(response) == id(started["httpx_client"])

    async def test_template_view_get_context_data(
        self, started: ContainerLifespan
    ) -> None:
        """TemplateView.get_context_data, called by Django with **kwargs, receives the resource."""
        view = ContextView.as_view()

        response = await asyncio.to_thread(view, RequestFactory().get("/"))

        assert response.context_data["counter"] is started["counter"]

    async def test_template_view_async_get(self, started: ContainerLifespan) -> None:
        """An async get on a TemplateView receives the started async resource."""
        view = AsyncTemplateView.as_view()

        response = await view(AsyncRequestFactory().get("/"))

        assert response.context_data["client"] is started["httpx_client"]

    async def test_list_view_get_queryset(self, started: ContainerLifespan) -> None:
        """ListView.get_queryset receives a Factory built from the started resources."""
        view = GreeterListView.as_view()

        response = await asyncio.to_thread(view, RequestFactory().get("/"))

        [greeter] = response.context_data["object_list"]
        assert greeter.client is started["httpx_client"]
        assert greeter.counter is started["counter"]


# DRF


def drf_call(path: str) -> Any:
    match = resolve(path, urlconf=STYLE_URLS)
    return match.func(APIRequestFactory().get(path), *match.args, **match.kwargs)


class TestDRF:
    async def test_viewset_action_routed_by_as_view(
        self, started: ContainerLifespan
    ) -> None:
        """A ViewSet action routed with as_view({"get": "list"}) receives the resource."""
        view = styles.ClientViewSet.as_view({"get": "list"})

        response = await asyncio.to_thread(view, APIRequestFactory().get("/"))

        assert response.data == {"id": id(started["httpx_client"])}

    @pytest.mark.parametrize(
        ("path", "extra"),
        [("/clients/", {}), ("/clients/7/", {"pk": "7"})],
    )
    async def test_viewset_routed_by_default_router(
        self, started: ContainerLifespan, path: str, extra: dict[str, str]
    ) -> None:
        """list and retrieve (with a URL kwarg and an Annotated marker) work behind a DefaultRouter."""
        name = "counter" if extra else "httpx_client"

        response = await asyncio.to_thread(drf_call, path)

        assert response.data == {"id": id(started[name]), **extra}

    @pytest.mark.parametrize("action", ["inject_inside", "inject_outside"])
    async def test_extra_action(self, started: ContainerLifespan, action: str) -> None:
        """An @action extra action is routed and injected with @inject above or below @action."""
        response = await asyncio.to_thread(drf_call, f"/clients/{action}/")

        assert response.data == {"id": id(started["counter"])}

    @pytest.mark.parametrize("path", ["/api-view-outside/", "/api-view-inside/"])
    async def test_api_view(self, started: ContainerLifespan, path: str) -> None:
        """An @api_view function view is injected with @inject above or below @api_view."""
        response = await asyncio.to_thread(drf_call, path)

        assert response.data == {"id": id(started["counter"])}

    def test_api_view_keeps_csrf_exempt(self) -> None:
        """@inject above @api_view keeps the view csrf_exempt and its DRF class."""
        view: Any = styles.api_view_inside

        assert view.csrf_exempt is True
        assert set(view.cls.http_method_names) == {"get", "options"}


# django-ninja


class TestNinja:
    async def test_sync_operation(self, started: ContainerLifespan) -> None:
        """A sync ninja operation receives the started resource next to its query parameter."""
        client = TestClient(styles.api)

        response = await asyncio.to_thread(client.get, "/sync?name=ada")

        assert response.status_code == 200
        assert response.json() == {"id": id(started["counter"]), "name": "ada"}

    async def test_async_operation(self, started: ContainerLifespan) -> None:
        """An async ninja operation receives the started async resource through an Annotated marker."""
        client = TestAsyncClient(styles.api)

        response = await client.get("/async?name=ada")

        assert response.status_code == 200
        assert response.json() == {"id": id(started["httpx_client"]), "name": "ada"}

    def test_schema_has_no_injected_parameter(self) -> None:
        """The OpenAPI schema lists the request parameters only, never the injected ones."""
        schema = styles.api.get_openapi_schema(path_prefix="")

        names = {
            path: [parameter["name"] for parameter in operation["get"]["parameters"]]
            for path, operation in schema["paths"].items()
        }

        assert names == {"/sync": ["name"], "/async": ["name"]}
        assert "requestBody" not in schema["paths"]["/async"]["get"]

    def test_signature_hides_injected_parameters(self) -> None:
        """inspect.signature and __annotations__ show the view without its injected parameters."""
        signature = inspect.signature(styles.ninja_async)

        assert list(signature.parameters) == ["request", "name"]
        assert signature.parameters["name"].annotation is str
        assert "client" not in styles.ninja_async.__annotations__
        assert "client" in inspect.unwrap(styles.ninja_async).__annotations__


# Django's decorators, stacked in either order


@login_required
@inject
def login_inside(
    request: HttpRequest, counter: Counter = Provide[Container.counter]
) -> JsonResponse:
    return JsonResponse({"id": id(counter)})


@inject
@login_required
def login_outside(
    request: HttpRequest, counter: Counter = Provide[Container.counter]
) -> JsonResponse:
    return JsonResponse({"id": id(counter)})


@login_required
@inject
async def async_login_inside(
    request: HttpRequest, client: httpx.AsyncClient = Provide[Container.httpx_client]
) -> JsonResponse:
    return JsonResponse({"id": id(client)})


@inject
@login_required
async def async_login_outside(
    request: HttpRequest, client: httpx.AsyncClient = Provide[Container.httpx_client]
) -> JsonResponse:
    return JsonResponse({"id": id(client)})


@csrf_exempt
@require_POST
@cache_page(60)
@inject
def stacked_inside(
    request: HttpRequest, counter: Counter = Provide[Container.counter]
) -> JsonResponse:
    return JsonResponse({"id": id(counter)})


@inject
@csrf_exempt
@require_POST
@cache_page(60)
def stacked_outside(
    request: HttpRequest, counter: Counter = Provide[Container.counter]
) -> JsonResponse:
    return JsonResponse({"id": id(counter)})


@csrf_exempt
@require_POST
@cache_page(60)
@inject
async def async_stacked_inside(
    request: HttpRequest, client: httpx.AsyncClient = Provide[Container.httpx_client]
) -> JsonResponse:
    return JsonResponse({"id": id(client)})


@inject
@csrf_exempt
@require_POST
@cache_page(60)
async def async_stacked_outside(
    request: HttpRequest, client: httpx.AsyncClient = Provide[Container.httpx_client]
) -> JsonResponse:
    return JsonResponse({"id": id(client)})


def counter_id(counter: Counter = Provide[Container.counter]) -> int:
    return id(counter)


thread_inside = sync_to_async(inject(counter_id))
thread_outside = inject(sync_to_async(counter_id))


@method_decorator([login_required, cache_page(60)], name="dispatch")
class DecoratedView(View):
    @method_decorator(csrf_exempt)
    @inject
    def get(
        self, request: HttpRequest, counter: Counter = Provide[Container.counter]
    ) -> JsonResponse:
        return JsonResponse({"id": id(counter)})

    @inject
    @method_decorator(require_POST)
    def post(
        self, request: HttpRequest, counter: Counter = Provide[Container.counter]
    ) -> JsonResponse:
        return JsonResponse({"id": id(counter)})


class AsyncDecoratedView(View):
    @method_decorator(login_required)
    @inject
    async def get(
        self,
        request: HttpRequest,
        client: httpx.AsyncClient = Provide[Container.httpx_client],
    ) -> JsonResponse:
        return JsonResponse({"id": id(client)})

    @inject
    @method_decorator(login_required)
    async def post(
        self,
        request: HttpRequest,
        client: httpx.AsyncClient = Provide[Container.httpx_client],
    ) -> JsonResponse:
        return JsonResponse({"id": id(client)})


class TestDjangoDecorators:
    @pytest.mark.parametrize("view", [login_inside, login_outside])
    async def test_login_required_sync(
        self, started: ContainerLifespan, view: Any
    ) -> None:
        """login_required below or above inject: a sync view receives the resource."""
        request = authenticated(RequestFactory().get("/"))

        response = await asyncio.to_thread(view, request)

        assert received(response) == id(started["counter"])

    @pytest.mark.parametrize("view", [async_login_inside, async_login_outside])
    async def test_login_required_async(
        self, started: ContainerLifespan, view: Any
    ) -> None:
        """login_required below or above inject: an async view stays async and receives the resource."""
        request = authenticated(AsyncRequestFactory().get("/"))

        response = await view(request)

        assert iscoroutinefunction(view)
        assert received(response) == id(started["httpx_client"])

    @pytest.mark.parametrize("view", [stacked_inside, stacked_outside])
    async def test_stacked_sync(self, started: ContainerLifespan, view: Any) -> None:
        """csrf_exempt, require_POST and cache_page below or above inject keep working on a sync view."""
        path = f"/sync/{view.__name__}/"

        response = await asyncio.to_thread(view, RequestFactory().post(path))
        refused = await asyncio.to_thread(view, RequestFactory().get(path))

        assert view.csrf_exempt is True
        assert received(response) == id(started["counter"])
        assert refused.status_code == 405

    @pytest.mark.parametrize("view", [async_stacked_inside, async_stacked_outside])
    async def test_stacked_async(self, started: ContainerLifespan, view: Any) -> None:
        """csrf_exempt, require_POST and cache_page below or above inject keep an async view async."""
        path = f"/async/{view.__name__}/"

        response = await view(AsyncRequestFactory().post(path))
        refused = await view(AsyncRequestFactory().get(path))

        assert iscoroutinefunction(view)
        assert view.csrf_exempt is True
        assert received(response) == id(started["httpx_client"])
        assert refused.status_code == 405

    @pytest.mark.parametrize("function", [thread_inside, thread_outside])
    async def test_sync_to_async(
        self, started: ContainerLifespan, function: Any
    ) -> None:
        """sync_to_async below or above inject: the function runs in a thread and receives the resource."""
        result = await function()

        assert iscoroutinefunction(function)
        assert result == id(started["counter"])

    @pytest.mark.parametrize("method", ["get", "post"])
    async def test_method_decorator_sync(
        self, started: ContainerLifespan, method: str
    ) -> None:
        """method_decorator'ed handlers and dispatch (login_required, cache_page, csrf_exempt, require_POST) are injected."""
        request = authenticated(getattr(RequestFactory(), method)(f"/cbv/{method}/"))

        response = await asyncio.to_thread(DecoratedView.as_view(), request)

        assert received(response) == id(started["counter"])

    @pytest.mark.parametrize("method", ["get", "post"])
    async def test_method_decorator_async(
        self, started: ContainerLifespan, method: str
    ) -> None:
        """method_decorator(login_required) below or above inject keeps an async handler async for Django."""
        request = authenticated(getattr(AsyncRequestFactory(), method)("/"))

        response = await AsyncDecoratedView.as_view()(request)

        assert AsyncDecoratedView.view_is_async
        assert received(response) == id(started["httpx_client"])


# Plain functions and methods


class Reporter:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @inject
    def report(self, greeter: Greeter = Provide[Container.greeter]) -> str:
        return f"{self.prefix}{greeter.greet('ada')}"

    @inject
    async def areport(
        self, client: httpx.AsyncClient = Provide[Container.httpx_client]
    ) -> httpx.AsyncClient:
        return client


saved = Signal()
seen: list[object] = []


@inject
def on_saved(
    sender: object, counter: Counter = Provide[Container.counter], **kwargs: Any
) -> None:
    seen.append(counter)


@inject
async def aon_saved(
    sender: object,
    client: httpx.AsyncClient = Provide[Container.httpx_client],
    **kwargs: Any,
) -> None:
    seen.append(client)


class TestPlainFunctions:
    async def test_bound_method_of_service(self, started: ContainerLifespan) -> None:
        """A bound method of a service object receives a Factory of started resources."""
        reporter = Reporter("> ")

        text = await asyncio.to_thread(reporter.report)
        client = await reporter.areport()

        assert text == "> Hello, ada!"
        assert client is started["httpx_client"]

    async def test_signal_receivers(self, started: ContainerLifespan) -> None:
        """Sync and async Django signal receivers receive the started resources."""
        saved.connect(on_saved)
        saved.connect(aon_saved)
        seen.clear()

        try:
            await saved.asend(sender=None)
        finally:
            saved.disconnect(on_saved)
            saved.disconnect(aon_saved)

        assert sorted(map(id, seen)) == sorted(
            [id(started["counter"]), id(started["httpx_client"])]
        )
