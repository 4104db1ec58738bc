"""The upstream service, and the client the example talks to it with.

The upstream stands in for a remote JSON API. The example serves it itself, under
``/upstream/``, so that it runs offline; ``EXAMPLE_UPSTREAM_URL`` points the client
at it (or at any other server answering the same way).
"""

from __future__ import annotations

from typing import TypedDict

import httpx
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

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, number: int) -> Quote | None:
        response = await self.client.get(f"quotes/{number}/")
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        response.raise_for_status()
        quote: Quote = response.json()
        return quote


# --8<-- [end:client]
