"""inject: markers resolved against the running container, for every view shape."""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from asgiref.sync import iscoroutinefunction
from dependency_injector import containers, providers
from dependency_injector import wiring as di_wiring
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncRequestFactory, RequestFactory, override_settings
from django.views import View

from lifespan_di import Provide, Provider, container_lifespan, inject
from lifespan_di.exceptions import InjectionError, LifespanNotRunningError


class Client:
    def __init__(self) -> None:
        self.closed = False


@asynccontextmanager
async def client_resource() -> AsyncIterator[Client]:
    client = Client()
    yield client
    client.closed = True


class Infra(containers.DeclarativeContainer):
    cache = providers.Resource(client_resource)


class Services(containers.DeclarativeContainer):
    client = providers.Resource(client_resource)
    wrapper = providers.Factory(dict, client=client)
    plain = providers.Factory(dict, kind="plain")
    infra = providers.Container(Infra)


class Other(containers.DeclarativeContainer):
    setting = providers.Object("value")


@inject
async def async_view(
    request: HttpRequest, client: Client = Provide[Services.client]
) -> Client:
    return client


@inject
def sync_view(
    request: HttpRequest, wrapper: dict[str, Client] = Provide[Services.wrapper]
) -> Any:
    return wrapper


@inject
def by_name(
    client: Annotated[Client, Provide["client"]],
    cache: Client = Provide["infra.cache"],
) -> tuple[Client, Client]:
    return client, cache


@inject
def plain_factory(value: dict[str, str] = Provide[Services.plain]) -> dict[str, str]:
    return value


@inject
def provider_marker(provider: Any = Provider[Services.client]) -> Any:
    return provider


@pytest.fixture
def services() -> Services:
    return Services()


class TestResolution:
    async def test_async_view_gets_started_resource(self, services: Services) -> None:
        """An async view receives the started resource and stays a coroutine function."""
        async with container_lifespan(services) as state:
            client = await async_view(AsyncRequestFactory().get("/"))

        assert client is state["client"]
        assert iscoroutinefunction(async_view)
        assert inspect.iscoroutinefunction(async_view)

    async def test_sync_view_in_thread_gets_values_not_futures(
        self, services: Services
    ) -> None:
        """A sync view running in a thread gets a Factory built from an async resource, not a Future."""
        async with container_lifespan(services) as state:
            wrapper = await asyncio.to_thread(sync_view, RequestFactory().get("/"))

        assert wrapper == {"client": state["client"]}

    async def test_string_ids_and_annotated_markers(self, services: Services) -> None:
        """Provide["x"], a nested "infra.cache" id and Annotated[T, Provide[...]] resolve without wire()."""
        async with container_lifespan(services) as state:
            client, cache = by_name()

        assert client is state["client"]
        assert cache is state["infra.cache"]

    async def test_explicit_keyword_wins(self, services: Services) -> None:
        """An argument passed explicitly is used instead of the container's value."""
        fake = Client()

        async with container_lifespan(services):
            received = await async_view(AsyncRequestFactory().get("/"), client=fake)

        assert received is fake

    async def test_explicit_positional_wins(self, services: Services) -> None:
        """An argument passed positionally is not injected a second time."""
        fake = Client()

        async with container_lifespan(services):
            received = await async_view(AsyncRequestFactory().get("/"), fake)

        assert received is fake

    async def test_provider_marker_gives_the_provider(self, services: Services) -> None:
        """Provider[...] injects the container's provider itself."""
        async with container_lifespan(services):
            provider = provider_marker()

        assert provider is services.client

    async def test_agrees_with_dependency_injector_wiring(
        self, services: Services
    ) -> None:
        """A function wired by dependency-injector and an inject'ed view receive the same object."""

        @di_wiring.inject
        async def wired(client: Client = di_wiring.Provide[Services.client]) -> Client:
            return client

        services.wire(modules=[sys.modules[__name__]])
        try:
            async with container_lifespan(services):
                theirs = await wired()
                ours = await async_view(AsyncRequestFactory().get("/"))
        finally:
            services.unwire()

        assert theirs is ours

    async def test_override_while_running_wins(self, services: Services) -> None:
        """A provider overridden while the lifespan runs is injected, and the started value returns after."""
        fake = Client()

        async with container_lifespan(services) as state:
            with services.client.override(providers.Object(fake)):
                during = await async_view(AsyncRequestFactory().get("/"))
            after = await async_view(AsyncRequestFactory().get("/"))

        assert during is fake
        assert after is state["client"]

    async def test_follows_the_running_container(self) -> None:
        """Two containers run one after the other: inject follows the one running."""
        first, second = Services(), Services()

        async with container_lifespan(first) as state:
            from_first = await async_view(AsyncRequestFactory().get("/"))
        async with container_lifespan(second) as other:
            from_second = await async_view(AsyncRequestFactory().get("/"))

        assert from_first is state["client"]
        assert from_second is other["client"]


class TestWithoutLifespan:
    async def test_resource_raises_not_running(self) -> None:
        """Without a lifespan, an injected resource raises LifespanNotRunningError, never starts lazily."""
        with (
            override_settings(LIFESPAN_DI={"CONTAINER": Services}),
            pytest.raises(LifespanNotRunningError, match="parameter 'client' of"),
        ):
            await async_view(AsyncRequestFactory().get("/"))

    async def test_factory_built_from_resource_raises_not_running(self) -> None:
        """A Factory that needs a resource raises the same error without a lifespan."""
        with (
            override_settings(LIFESPAN_DI={"CONTAINER": Services}),
            pytest.raises(LifespanNotRunningError),
        ):
            sync_view(RequestFactory().get("/"))

    async def test_plain_provider_resolves_from_configured_container(self) -> None:
        """A provider that needs no resource resolves from the configured container without a lifespan."""
        with override_settings(LIFESPAN_DI={"CONTAINER": Services}):
            value = plain_factory()

        assert value == {"kind": "plain"}

    async def test_unresolvable_marker_names_view_and_parameter(
        self, services: Services
    ) -> None:
        """A marker naming no provider fails with InjectionError, never passing the marker on."""

        @inject
        def view(missing: Any = Provide["does_not_exist"]) -> Any:
            return missing

        async with container_lifespan(services):
            with pytest.raises(InjectionError) as caught:
                view()

        assert "parameter 'missing' of tests.test_inject." in str(caught.value)
        assert "names no provider of the container 'Services'" in str(caught.value)

    async def test_marker_is_shown_as_written(self) -> None:
        """The error names the marker as its code reads, Provide[Services.client], not the provider's repr."""
        with (
            override_settings(LIFESPAN_DI={"CONTAINER": Services}),
            pytest.raises(LifespanNotRunningError) as caught,
        ):
            await async_view(AsyncRequestFactory().get("/"))

        assert str(caught.value).startswith(
            "Cannot use Provide[Services.client] for parameter 'client' of "
            "tests.test_inject.async_view: no lifespan is running"
        )


async def unresolved(marker: Any) -> str:
    """The InjectionError a view injected with ``marker`` raises under ``Services``."""

    @inject
    def view(value: Any = marker) -> Any:
        return value

    async with container_lifespan(Services()):
        with pytest.raises(InjectionError) as caught:
            view()
    return str(caught.value)


class TestUnresolvedHints:
    async def test_misspelt_id_suggests_the_closest_names(self) -> None:
        """A misspelt string id is answered with the container's closest provider names."""
        message = await unresolved(Provide["clinet"])

        assert message.endswith(
            "Provide['clinet'] names no provider of the container 'Services'. "
            "Did you mean Provide['client']?"
        )

    async def test_no_close_name_lists_the_providers(self) -> None:
        """A name close to none is answered with the container's real provider names."""
        message = await unresolved(Provide["zzz"])

        assert message.endswith(
            "Its providers: 'client', 'wrapper', 'plain', 'infra', 'infra.cache'."
        )
        assert "httpx_client" not in message

    async def test_containers_of_one_name_are_told_apart(self) -> None:
        """A provider of another module's container of the same name is shown, and the fix suggested, with each container's module."""
        from tests.project import twin_containers

        message = await unresolved(Provide[twin_containers.Services.client])

        assert message.endswith(
            "Provide[tests.project.twin_containers.Services.client] names no provider "
            "of the container 'tests.test_inject.Services'. Did you mean "
            "Provide[tests.test_inject.Services.client]?"
        )

    async def test_provider_of_another_container_names_it(self) -> None:
        """A marker of another container with no close name asks whether that container was meant."""
        message = await unresolved(Provide[Other.setting])

        assert (
            "Provide[Other.setting] names no provider of the container 'Services'"
            in message
        )
        assert message.endswith(
            "Is 'Other', whose provider the marker names, the container you meant to "
            "run? Name it in LIFESPAN_DI['CONTAINER'] (or pass it to "
            "get_asgi_application())."
        )


class TestViewShapes:
    async def test_class_based_view_methods(self, services: Services) -> None:
        """Methods of a View are injected, and an async method keeps the view async for Django."""

        class ClientView(View):
            @inject
            async def get(
                self, request: HttpRequest, client: Client = Provide[Services.client]
            ) -> JsonResponse:
                return JsonResponse({"client": id(client)})

        view = ClientView.as_view()
        async with container_lifespan(services) as state:
            response = await view(AsyncRequestFactory().get("/"))

        assert ClientView.view_is_async
        assert response.content == f'{{"client": {id(state["client"])}}}'.encode()

    async def test_sync_class_based_view(self, services: Services) -> None:
        """A sync View method gets plain values."""

        class WrapperView(View):
            @inject
            def get(
                self, request: HttpRequest, wrapper: Any = Provide[Services.wrapper]
            ) -> HttpResponse:
                return HttpResponse(type(wrapper["client"]).__name__)

        async with container_lifespan(services):
            response = await asyncio.to_thread(
                WrapperView.as_view(), RequestFactory().get("/")
            )

        assert response.content == b"Client"

    async def test_drf_api_view(self, services: Services) -> None:
        """A DRF APIView method is injected."""
        from rest_framework.response import Response
        from rest_framework.views import APIView

        class ClientAPI(APIView):
            authentication_classes: tuple[Any, ...] = ()
            permission_classes: tuple[Any, ...] = ()

            @inject
            def get(
                self, request: Any, client: Client = Provide[Services.client]
            ) -> Response:
                return Response({"closed": client.closed})

        async with container_lifespan(services):
            response = await asyncio.to_thread(
                ClientAPI.as_view(), RequestFactory().get("/")
            )

        assert response.status_code == 200
        assert response.data == {"closed": False}

    async def test_static_method(self, services: Services) -> None:
        """A staticmethod can be injected."""

        class Holder:
            @inject
            @staticmethod
            def client(client: Client = Provide[Services.client]) -> Client:
                return client

        async with container_lifespan(services) as state:
            client = Holder.client()

        assert client is state["client"]


class TestDecorationErrors:
    def test_no_marker(self) -> None:
        """Decorating a function without markers fails at decoration, with no made-up provider name."""
        with pytest.raises(
            InjectionError, match="none of its parameters has a Provide"
        ) as caught:

            @inject
            def view(request: HttpRequest) -> None: ...

        assert "httpx_client" not in str(caught.value)

    def test_closing_marker(self) -> None:
        """Closing[...] is rejected at decoration with the reason."""
        with pytest.raises(InjectionError, match="Closing"):

            @inject
            def view(
                client: Any = di_wiring.Closing[Provide[Services.client]],
            ) -> None: ...

    def test_class(self) -> None:
        """Decorating a class fails, pointing to its methods."""
        with pytest.raises(InjectionError, match="decorate its methods"):
            inject(View)

    def test_positional_only(self) -> None:
        """A positional-only marked parameter cannot be injected by keyword and is rejected."""
        with pytest.raises(InjectionError, match="cannot be passed by keyword"):

            @inject
            def view(client: Any = Provide[Services.client], /) -> None: ...

    def test_marker_of_nothing(self) -> None:
        """A marker naming neither a provider nor an id is rejected, with no made-up provider name."""
        with pytest.raises(
            InjectionError, match="names neither a provider nor a provider id"
        ) as caught:

            @inject
            def view(client: Any = Provide[42]) -> None: ...  # type: ignore[index]

        assert "httpx_client" not in str(caught.value)
