"""Type-checked by mypy (not collected by pytest): inject keeps the view's type."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, assert_type

from django.http import HttpRequest, HttpResponse

from lifespan_di import Provide, inject
from lifespan_di.providers import RequestResource


class Session:
    """What the request resource yields."""


def open_session() -> Iterator[Session]:
    yield Session()


async def open_async_session() -> AsyncIterator[Session]:
    yield Session()


def request_resources() -> None:
    assert_type(RequestResource(open_session), RequestResource[Session])
    assert_type(RequestResource(open_async_session), RequestResource[Session])


@inject
async def async_view(
    request: HttpRequest, client: str = Provide["httpx_client"]
) -> HttpResponse:
    return HttpResponse(client)


@inject
def sync_view(
    request: HttpRequest, client: str = Provide["httpx_client"]
) -> HttpResponse:
    return HttpResponse(client)


async def check(request: HttpRequest) -> None:
    pending = assert_type(async_view(request), Coroutine[Any, Any, HttpResponse])
    assert_type(await pending, HttpResponse)
    assert_type(sync_view(request), HttpResponse)
    assert_type(sync_view(request, client="explicit"), HttpResponse)
