"""Views for small test containers with request resources named by string markers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.db import connection
from django.http import Http404, HttpRequest, JsonResponse, StreamingHttpResponse
from django.urls import path

from lifespan_di import Provide, inject


@inject
def sync_view(request: HttpRequest, session: str = Provide["session"]) -> JsonResponse:
    return JsonResponse({"session": session})


@inject
def broken_view(
    request: HttpRequest,
    session: str = Provide["session"],
    broken: str = Provide["broken"],
) -> JsonResponse:
    return JsonResponse({"session": session, "broken": broken})


@inject
async def missing_view(
    request: HttpRequest, session: str = Provide["session"]
) -> JsonResponse:
    msg = f"nothing for {session}"
    raise Http404(msg)


def stream_view(request: HttpRequest) -> StreamingHttpResponse:
    """Streams three chunks, each reading the request's session from request.state."""

    def body() -> Iterator[str]:
        for number in range(3):
            yield f"{number}:{request.state['session']}\n"  # type: ignore[attr-defined]

    return StreamingHttpResponse(body())


@inject
async def async_view(
    request: HttpRequest, session: str = Provide["session"]
) -> JsonResponse:
    return JsonResponse({"session": session})


@inject
async def async_broken_view(
    request: HttpRequest,
    session: str = Provide["session"],
    broken: str = Provide["broken"],
) -> JsonResponse:
    return JsonResponse({"session": session, "broken": broken})


@inject
async def orm_view(
    request: HttpRequest, atomic: Any = Provide["atomic"]
) -> JsonResponse:
    """Saves a group in the request's transaction; ``?fail=1`` raises after it."""

    def save() -> bool:
        Group.objects.create(name=request.GET["name"])
        return connection.in_atomic_block

    in_atomic_block = await sync_to_async(save)()
    if request.GET.get("fail"):
        msg = "the view failed after saving"
        raise ValueError(msg)
    return JsonResponse({"in_atomic_block": in_atomic_block})


LATE: list[tuple[asyncio.Event, asyncio.Task[Any]]] = []
"""The tasks ``late_view`` left running, each with the event that lets it go on."""


async def late_view(request: HttpRequest) -> JsonResponse:
    """Opens ``?open=`` if given, then leaves a task that reads ``?late=`` once released.

    ``?how=async`` reads it with ``aget``, otherwise synchronously.
    """
    state = request.state  # type: ignore[attr-defined]
    if "open" in request.GET:
        await state.aget(request.GET["open"])
    release = asyncio.Event()
    key = request.GET["late"]

    async def late() -> Any:
        await release.wait()
        if request.GET.get("how") == "async":
            return await state.aget(key)
        return state[key]

    LATE.append((release, asyncio.create_task(late())))
    return JsonResponse({})


urlpatterns = [
    path("sync/", sync_view),
    path("broken/", broken_view),
    path("missing/", missing_view),
    path("stream/", stream_view),
    path("async/", async_view),
    path("async-broken/", async_broken_view),
    path("orm/", orm_view),
    path("late/", late_view),
]
