"""Views covering each way of reaching a resource: state, inject, sync, async, class-based."""

from __future__ import annotations

import asyncio
from typing import Annotated

import httpx
from django.http import HttpRequest, JsonResponse
from django.views import View

from lifespan_di import Provide, inject
from tests.project.containers import Container, Counter, Greeter


@inject
async def async_inject(
    request: HttpRequest,
    client: httpx.AsyncClient = Provide[Container.httpx_client],
    greeter: Greeter = Provide[Container.greeter],
) -> JsonResponse:
    return JsonResponse(
        {
            "client": id(client),
            "client_type": type(client).__name__,
            "same_client": greeter.client is client,
            "state_client": id(request.state["httpx_client"]),  # type: ignore[attr-defined]
        }
    )


@inject
def sync_inject(
    request: HttpRequest,
    counter: Annotated[Counter, Provide["counter"]],
    greeter: Greeter = Provide[Container.greeter],
) -> JsonResponse:
    counter.value += 1
    return JsonResponse(
        {
            "counter": id(counter),
            "greeter_type": type(greeter).__name__,
            "client_type": type(greeter.client).__name__,
        }
    )


def sync_state(request: HttpRequest) -> JsonResponse:
    state = request.state  # type: ignore[attr-defined]
    state["scratch"] = request.GET.get("scratch")
    return JsonResponse(
        {
            "client": id(state["httpx_client"]),
            "same_by_attribute": state.httpx_client is state["httpx_client"],
            "keys": sorted(state),
        }
    )


async def slow(request: HttpRequest) -> JsonResponse:
    await asyncio.sleep(float(request.GET.get("seconds", "1")))
    return JsonResponse({"slept": True})


def plain(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


class GreetView(View):
    @inject
    async def get(
        self, request: HttpRequest, greeter: Greeter = Provide[Container.greeter]
    ) -> JsonResponse:
        return JsonResponse({"greeting": greeter.greet("class-based")})
