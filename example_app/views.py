"""Views: an async view with inject, a sync view reading request.state."""

from __future__ import annotations

import httpx
from django.http import HttpRequest, JsonResponse

from example_app.containers import Container, Greeter
from lifespan_di import Provide, inject


@inject
async def fetch(
    request: HttpRequest,
    client: httpx.AsyncClient = Provide[Container.httpx_client],
    greeter: Greeter = Provide[Container.greeter],
) -> JsonResponse:
    """Call this same server's status page through the app-wide client."""
    status = await greeter.fetch_status(request.build_absolute_uri("/status/"))
    return JsonResponse(
        {"upstream_status": status, "shared_client": greeter.client is client}
    )


def status(request: HttpRequest) -> JsonResponse:
    """A sync view, no decorator: the same client, read from request.state."""
    client = request.state["httpx_client"]  # type: ignore[attr-defined]
    clock = request.state.clock  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "client_open": not client.is_closed,
            "serving_since": clock.started_at.isoformat(),
        }
    )
