"""Views that record which thread runs each part of a request, for REQUEST_THREADS.

Each request carries ``?id=<n>``; ``EVENTS`` gets ``(id, part, thread ident)`` for
the ``request_started`` receiver, a sync middleware, the view and the response's
``close()``, which Django runs after sending it and which sends ``request_finished``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from django.core.signals import request_started
from django.db import connection, transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse

EVENTS: list[tuple[str, str, int]] = []
RAW_CONNECTIONS: list[Any] = []
"""The DB-API connections the views used, to check that they were closed."""


def record(request_id: str, part: str) -> None:
    EVENTS.append((request_id, part, threading.get_ident()))


@receiver(request_started)
def started(sender: Any, scope: Any = None, **kwargs: Any) -> None:
    if scope is not None and scope.get("path", "").startswith("/threads/"):
        query = parse_qs(scope.get("query_string", b"").decode())
        record(query.get("id", [""])[0], "started")


def middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Any:
    """A sync middleware: Django runs it in the request's thread."""

    def record_thread(request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/threads/"):
            record(request.GET.get("id", ""), "middleware")
        return get_response(request)

    return record_thread


class RecordingResponse(JsonResponse):
    def __init__(self, request: HttpRequest, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.request_id = request.GET.get("id", "")

    def close(self) -> None:
        record(self.request_id, "close")
        super().close()


def where(request: HttpRequest) -> dict[str, Any]:
    thread = threading.current_thread()
    return {"thread": thread.ident, "name": thread.name}


def sync_view(request: HttpRequest) -> HttpResponse:
    """Records its thread; sleeps ``?sleep=<seconds>`` in it."""
    record(request.GET.get("id", ""), "view")
    time.sleep(float(request.GET.get("sleep", 0)))
    return RecordingResponse(request, where(request))


async def async_view(request: HttpRequest) -> HttpResponse:
    """An async view: its request's thread-sensitive work is Django's own."""
    await asyncio.sleep(0)
    return RecordingResponse(request, {})


def connection_view(request: HttpRequest) -> HttpResponse:
    """Answers whether the thread's connection was open and which one it is."""
    was_open = connection.connection is not None
    connection.ensure_connection()
    time.sleep(float(request.GET.get("sleep", 0)))
    # Its own connection, not RAW_CONNECTIONS[-1]: a view on another thread may
    # append between the two.
    used = connection.connection
    RAW_CONNECTIONS.append(used)
    if request.GET.get("close"):
        connection.close()
    return RecordingResponse(
        request, {**where(request), "was_open": was_open, "id": id(used)}
    )


def atomic_view(request: HttpRequest) -> HttpResponse:
    """Saves a group, then fails with ``?fail=1``: ATOMIC_REQUESTS rolls it back."""
    # Imported here: other settings modules serve these URLs without auth installed.
    from django.contrib.auth.models import Group

    Group.objects.create(name=request.GET["name"])
    with transaction.atomic():
        Group.objects.create(name=request.GET["name"] + "-inner")
    if request.GET.get("fail"):
        msg = "after saving"
        raise RuntimeError(msg)
    return RecordingResponse(
        request, {**where(request), "atomic": connection.in_atomic_block}
    )
