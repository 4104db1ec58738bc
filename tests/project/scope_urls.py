"""Views for small test containers with request resources named by string markers."""

from __future__ import annotations

from collections.abc import Iterator

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
async def async_broken_view(
    request: HttpRequest,
    session: str = Provide["session"],
    broken: str = Provide["broken"],
) -> JsonResponse:
    return JsonResponse({"session": session, "broken": broken})


urlpatterns = [
    path("sync/", sync_view),
    path("broken/", broken_view),
    path("missing/", missing_view),
    path("stream/", stream_view),
    path("async-broken/", async_broken_view),
]
