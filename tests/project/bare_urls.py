"""Bare Django views doing the load view's work by hand, without lifespan_di."""

from __future__ import annotations

import asyncio

from django.http import HttpRequest, JsonResponse
from django.urls import path

from tests.project.request_views import plain_session


def plain(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


async def load(request: HttpRequest) -> JsonResponse:
    """The load view's work with its session opened and closed by hand."""
    with plain_session() as session:
        await asyncio.sleep(0)
        return JsonResponse({"seen": None, "kept": True, "session": session.id})


urlpatterns = [path("plain/", plain), path("load/", load)]
