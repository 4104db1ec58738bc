"""The example project's own tests: its views, with the lifespan running in the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from django.test import AsyncClient, override_settings

from example_app.containers import Container
from lifespan_di import container_lifespan

pytestmark = pytest.mark.urls("example_app.urls")


@asynccontextmanager
async def fake_upstream() -> AsyncIterator[httpx.AsyncClient]:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(respond)) as client:
        yield client


@pytest.fixture
async def container() -> AsyncIterator[Any]:
    """The example container, its HTTP client answered locally, running for the test."""
    instance = Container()
    with (
        override_settings(LIFESPAN_DI={"CONTAINER": instance}),
        instance.httpx_client.override(providers.Resource(fake_upstream)),
    ):
        async with container_lifespan(instance):
            yield instance


async def test_fetch_uses_the_shared_client(container: Any) -> None:
    """The async view gets the app-wide client, and the greeter is built from it."""
    response = await AsyncClient().get("/fetch/")

    assert response.status_code == 200
    assert response.json() == {"upstream_status": 204, "shared_client": True}


async def test_status_reads_request_state(container: Any) -> None:
    """The sync view reads the same resources from request.state."""
    response = await AsyncClient().get("/status/")

    assert response.status_code == 200
    assert response.json()["client_open"] is True
