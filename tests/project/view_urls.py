"""Views using a ``ViewResource`` named ``uow`` (and a ``RequestResource``, ``session``).

Each test builds its own container with those names; the views and the resources
append to ``EVENTS`` so that a test sees what ran in which order. Every view answers
``saved`` once it used the unit of work, as the README's unit-of-work view does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path
from django.views import View
from ninja import NinjaAPI
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lifespan_di import Provide, inject
from lifespan_di.exceptions import RequestScopeError

EVENTS: list[str] = []


def saved(uow: Any) -> HttpResponse:
    EVENTS.append(f"view returns:{uow}")
    return HttpResponse("saved")


@inject
def sync_view(request: HttpRequest, uow: Any = Provide["uow"]) -> HttpResponse:
    return saved(uow)


@inject
async def async_view(request: HttpRequest, uow: Any = Provide["uow"]) -> HttpResponse:
    return saved(uow)


def state_view(request: HttpRequest) -> HttpResponse:
    return saved(request.state["uow"])  # type: ignore[attr-defined]


async def async_state_view(request: HttpRequest) -> HttpResponse:
    return saved(await request.state.aget("uow"))  # type: ignore[attr-defined]


class SyncClass(View):
    @inject
    def get(self, request: HttpRequest, uow: Any = Provide["uow"]) -> HttpResponse:
        return saved(uow)


class AsyncClass(View):
    @inject
    async def get(
        self, request: HttpRequest, uow: Any = Provide["uow"]
    ) -> HttpResponse:
        return saved(uow)


class Rest(APIView):
    authentication_classes: tuple[Any, ...] = ()
    permission_classes: tuple[Any, ...] = ()
    renderer_classes = (JSONRenderer,)

    @inject
    def get(self, request: Request, uow: Any = Provide["uow"]) -> Response:
        EVENTS.append(f"view returns:{uow}")
        return Response("saved")


api = NinjaAPI(urls_namespace="lifespan_di_view_resources")


@api.get("/uow")
@inject
async def ninja_view(request: Any, uow: Any = Provide["uow"]) -> str:
    EVENTS.append(f"view returns:{uow}")
    return "saved"


@inject
def order_view(request: HttpRequest, uow: Any = Provide["uow"]) -> HttpResponse:
    """Saves an order of customer 42, whom the database does not know."""
    uow.execute("INSERT INTO orders (customer) VALUES (42)")
    return HttpResponse("saved")


def failing_view(request: HttpRequest) -> HttpResponse:
    request.state["uow"]  # type: ignore[attr-defined]
    msg = "the view failed after using its unit of work"
    raise ValueError(msg)


def outer_view(request: HttpRequest) -> HttpResponse:
    """Calls another view function, then goes on using what it opened."""
    response = sync_view(request)
    EVENTS.append(f"outer goes on:{request.state['uow']}")  # type: ignore[attr-defined]
    return response


@inject
async def mixed_view(
    request: HttpRequest,
    uow: Any = Provide["uow"],
    session: Any = Provide["session"],
) -> HttpResponse:
    return saved(f"{uow}+{session}")


async def stream_view(request: HttpRequest) -> StreamingHttpResponse:
    """Opens ``uow`` in the view, then reads it from the streamed body: an error."""
    state = request.state  # type: ignore[attr-defined]
    await state.aget("uow")

    async def body() -> AsyncIterator[str]:
        try:
            yield f"{await state.aget('uow')}\n"
        except RequestScopeError as error:
            yield f"{type(error).__name__}: {error}"

    return StreamingHttpResponse(body())


def server_error(request: HttpRequest) -> HttpResponse:
    """The project's handler500."""
    return HttpResponse("handler500 answered", status=500)


handler500 = server_error

urlpatterns = [
    path("sync/", sync_view),
    path("async/", async_view),
    path("state/", state_view),
    path("async-state/", async_state_view),
    path("class/", SyncClass.as_view()),
    path("async-class/", AsyncClass.as_view()),
    path("rest/", Rest.as_view()),
    path("ninja/", api.urls),
    path("order/", order_view),
    path("fail/", failing_view),
    path("outer/", outer_view),
    path("mixed/", mixed_view),
    path("stream/", stream_view),
]
