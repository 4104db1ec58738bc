"""The upstream service, and the client the example talks to it with.

The upstream stands in for a remote JSON API. The example serves it itself, under
``/upstream/``, so that it runs offline: a request finds it on the server it came in
to, at whatever address and port that server listens. Set
``EXAMPLE_UPSTREAM_URL`` to point the client at another server answering the same
way, and for commands and workers, which serve no connection to follow.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, TypedDict

import httpx
from asgiref.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    HTTPScope,
    Scope,
    WebSocketScope,
)
from django.conf import settings
from django.http import HttpRequest, JsonResponse


class Quote(TypedDict):
    number: int
    text: str
    author: str


QUOTES = {
    1: ("Simple is better than complex.", "The Zen of Python"),
    2: ("Errors should never pass silently.", "The Zen of Python"),
    3: ("Now is better than never.", "The Zen of Python"),
}


def find_quote(number: int) -> Quote | None:
    """What the upstream knows: a quote, or None."""
    if number not in QUOTES:
        return None
    text, author = QUOTES[number]
    return {"number": number, "text": text, "author": author}


def upstream_quote(request: HttpRequest, number: int) -> JsonResponse:
    """The upstream's one endpoint: ``GET quotes/<number>/``."""
    quote = find_quote(number)
    if quote is None:
        return JsonResponse({"error": f"No quote {number}."}, status=404)
    return JsonResponse(quote)


# --8<-- [start:client]
class QuotesApi:
    """The upstream's client: a service built per use from the app-wide client."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")

    async def get(self, number: int) -> Quote | None:
        response = await self.client.get(f"{self.base_url}/quotes/{number}/")
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        response.raise_for_status()
        quote: Quote = response.json()
        return quote


# --8<-- [end:client]


# --- where the upstream is ------------------------------------------------------------

THIS_SERVER: ContextVar[str | None] = ContextVar("example_this_server", default=None)
"""The URL of the server the current connection came in to; None outside one."""

NO_CONNECTION_SERVER = "http://127.0.0.1:8000"
"""The server of commands and workers without ``EXAMPLE_UPSTREAM_URL``: uvicorn's
default address."""


def upstream_url() -> str:
    """``EXAMPLE_UPSTREAM_URL``, or else ``/upstream/`` on the connection's server."""
    configured: str | None = getattr(settings, "EXAMPLE_UPSTREAM_URL", None)
    if configured:
        return configured
    return f"{THIS_SERVER.get() or NO_CONNECTION_SERVER}/upstream/"


def server_url(scope: HTTPScope | WebSocketScope) -> str | None:
    """The URL of the server that received ``scope``'s connection, from its ``server``.

    None where the scope has no address: a Unix socket, or a test communicator.
    """
    server = scope.get("server")
    if server is None or server[1] is None:
        return None
    host, port = server
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    return f"{scheme}://{host}:{port}"


class FollowThisServer:
    """ASGI middleware: code serving a connection finds the upstream on its server.

    Sets ``THIS_SERVER`` for each HTTP request and WebSocket connection; Django and
    Channels run the view or consumer in a copy of this context.
    """

    def __init__(self, application: Any) -> None:
        # `application`: the attribute lifespan_di's checks look through, to find
        # the Channels router and its consumers.
        self.application = application

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            await self.application(scope, receive, send)
            return
        token = THIS_SERVER.set(server_url(scope))
        try:
            await self.application(scope, receive, send)
        finally:
            THIS_SERVER.reset(token)
