"""Fixtures of the example's tests: its settings, and its upstream in process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.http import HttpRequest

from example_app import settings as example
from example_app.containers import Container
from example_app.upstream import upstream_quote
from lifespan_di.testing import override


@pytest.fixture(autouse=True)
def example_settings(settings: Any, tmp_path: Path) -> Any:
    """The example's own settings, with a fresh SQLite file for each test."""
    settings.ROOT_URLCONF = example.ROOT_URLCONF
    settings.MIDDLEWARE = example.MIDDLEWARE
    settings.LIFESPAN_DI = example.LIFESPAN_DI
    settings.EXAMPLE_DATABASE = str(tmp_path / "example.sqlite3")
    settings.EXAMPLE_UPSTREAM_URL = "http://upstream.test/upstream/"
    return settings


def answer_as_upstream(request: httpx.Request) -> httpx.Response:
    """Answer ``GET /upstream/quotes/<n>/`` with the upstream view's own response."""
    number = int(request.url.path.rstrip("/").rsplit("/", 1)[1])
    reply = upstream_quote(HttpRequest(), number)
    return httpx.Response(
        reply.status_code,
        content=reply.content,
        headers={"Content-Type": reply["Content-Type"]},
    )


# --8<-- [start:fake_upstream]
@pytest.fixture(autouse=True)
def upstream(example_settings: Any) -> Iterator[None]:
    """The real http_client resource, sending its requests to an in-process fake.

    The override is entered before any lifespan starts, so the client is created
    with the fake transport: no test needs a server or the network.
    """
    fake = httpx.MockTransport(answer_as_upstream)
    with override(Container.upstream_transport, fake):
        yield


# --8<-- [end:fake_upstream]
