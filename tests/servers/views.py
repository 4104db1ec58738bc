"""Views of the matrix project: each way of reaching a resource, and the slow paths."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse

from lifespan_di import Provide, inject
from tests.servers.containers import Container, Handle, record


def ready(request: HttpRequest) -> JsonResponse:
    """Readiness for the tests: answers without touching any resource."""
    return JsonResponse({"pid": os.getpid()})


def sync_state(request: HttpRequest) -> JsonResponse:
    state = request.state  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "pid": os.getpid(),
            "names": sorted(state),
            "pool": id(state["pool"]),
            "cache_uses_pool": state.cache.using.pool is state.pool,
            "closed": any(state[name].closed for name in ("config", "pool", "cache")),
        }
    )


@inject
def sync_inject(
    request: HttpRequest,
    pool: Handle = Provide[Container.pool],
    cache: Handle = Provide[Container.cache],
) -> JsonResponse:
    return JsonResponse(
        {
            "pid": os.getpid(),
            "pool": id(pool),
            "pool_type": type(pool).__name__,
            "same_as_state": request.state["pool"] is pool,  # type: ignore[attr-defined]
            "cache_uses_pool": cache.using.pool is pool,
        }
    )


@inject
async def async_inject(
    request: HttpRequest,
    pool: Handle = Provide[Container.pool],
    cache: Handle = Provide[Container.cache],
) -> JsonResponse:
    return JsonResponse(
        {
            "pid": os.getpid(),
            "pool": id(pool),
            "pool_type": type(pool).__name__,
            "same_as_state": request.state["pool"] is pool,  # type: ignore[attr-defined]
            "cache_uses_pool": cache.using.pool is pool,
        }
    )


@inject
async def slow(
    request: HttpRequest, pool: Handle = Provide[Container.pool]
) -> JsonResponse:
    """Hold a resource across a sleep, then report whether it was closed meanwhile."""
    record("view:slow:begin")
    await asyncio.sleep(float(request.GET.get("seconds", "1")))
    record("view:slow:end")
    return JsonResponse({"closed": pool.closed})


@inject
async def boom(request: HttpRequest, pool: Handle = Provide[Container.pool]) -> None:
    record("view:boom")
    msg = f"boom while using {pool.name}"
    raise RuntimeError(msg)


@inject
async def stream(
    request: HttpRequest, cache: Handle = Provide[Container.cache]
) -> StreamingHttpResponse:
    """Stream chunks for a while, using the resource for each; record how it ended."""

    async def chunks() -> AsyncIterator[bytes]:
        sent = 0
        try:
            for _ in range(int(request.GET.get("chunks", "100"))):
                if cache.closed:
                    record("stream:used-closed")
                yield b"x" * 1024 + b"\n"
                sent += 1
                await asyncio.sleep(0.05)
            record("stream:end")
        finally:
            record(f"stream:closed:{'done' if sent else 'none'}")

    record("view:stream")
    return StreamingHttpResponse(chunks(), content_type="text/plain")


@inject
async def sessions(
    request: HttpRequest,
    unit: Handle = Provide[Container.unit],
    session: Handle = Provide[Container.session],
) -> JsonResponse:
    """Use both request resources (``unit`` opens first, so it closes last)."""
    return JsonResponse({"unit": id(unit), "session": id(session)})
