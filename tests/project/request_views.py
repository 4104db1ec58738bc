"""Views using request resources: inject, request.state, streaming, failing views."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse

from lifespan_di import Provide, inject
from tests.project.containers import Container, Repository, Session, record


@inject
def sync_view(
    request: HttpRequest,
    session: Session = Provide[Container.session],
    repository: Repository = Provide[Container.repository],
) -> JsonResponse:
    return JsonResponse(
        {
            "session": session.id,
            "repository_shares": repository.session is session,
            "state_shares": request.state["session"] is session,  # type: ignore[attr-defined]
            "opened_in_view_thread": session.thread == threading.get_ident(),
        }
    )


@inject
async def async_view(
    request: HttpRequest,
    async_session: Session = Provide[Container.async_session],
    repository: Repository = Provide[Container.repository],
) -> JsonResponse:
    await asyncio.sleep(float(request.GET.get("sleep", "0")))
    state = request.state  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "async_session": async_session.id,
            "session": repository.session.id,
            "state_shares": await state.aget("async_session") is async_session,
            "state_sync_shares": state["session"] is repository.session,
        }
    )


def state_view(request: HttpRequest) -> JsonResponse:
    """A sync view opening both request resources through request.state alone."""
    state = request.state  # type: ignore[attr-defined]
    return JsonResponse(
        {"session": state.session.id, "async_session": state["async_session"].id}
    )


@inject
def failing_view(
    request: HttpRequest, session: Session = Provide[Container.session]
) -> JsonResponse:
    msg = f"the view failed using session {session.id}"
    raise ValueError(msg)


@inject
async def async_failing_view(
    request: HttpRequest, async_session: Session = Provide[Container.async_session]
) -> JsonResponse:
    msg = f"the view failed using session {async_session.id}"
    raise ValueError(msg)


@inject
async def load_view(
    request: HttpRequest,
    async_session: Session = Provide[Container.async_session],
    client: httpx.AsyncClient = Provide[Container.httpx_client],
) -> JsonResponse:
    """Writes a token to request.state, yields to other requests, reads it back."""
    state = request.state  # type: ignore[attr-defined]
    seen = state.get("scratch")  # another request's write would show here
    token = request.GET.get("token", "")
    state["scratch"] = token
    await asyncio.sleep(0)
    return JsonResponse(
        {"seen": seen, "kept": state["scratch"] == token, "session": async_session.id}
    )


@contextmanager
def plain_session() -> Iterator[Session]:
    """The bare-Django baseline's session, opened and closed in the view.

    It records the same events as the container's sessions, so that the baseline
    does the same work.
    """
    unit = Session("plain", None)
    record(f"open:{unit.label()}")
    yield unit
    record(f"commit:{unit.label()}")
    unit.closed = True
    record(f"close:{unit.label()}")


async def stream_view(request: HttpRequest) -> StreamingHttpResponse:
    """Streams chunks that each read the request's session; delay between chunks."""
    chunks = int(request.GET.get("chunks", "5"))
    delay = float(request.GET.get("delay", "0.01"))

    async def body() -> AsyncIterator[str]:
        session: Session = await request.state.aget("async_session")  # type: ignore[attr-defined]
        for number in range(chunks):
            await asyncio.sleep(delay)
            yield f"{number}:{session.id}:{'closed' if session.closed else 'open'}\n"

    return StreamingHttpResponse(body(), content_type="text/plain")
