"""The example project's tests: its views, with the real lifespan around each test."""

from __future__ import annotations

import io
import logging
from typing import Any, cast

import httpx
import pytest
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.core.management.base import CommandError

from example_app.asgi import application
from example_app.conftest import answer_as_upstream
from example_app.containers import Container
from example_app.management.commands.favourites import Command
from example_app.management.commands.save_quotes import Command as SaveQuotes
from example_app.upstream import find_quote, server_url
from lifespan_di import State
from lifespan_di.exceptions import StartupError
from lifespan_di.testing import LifespanAsyncClient, LifespanClient, override


# --8<-- [start:async_test]
async def test_quote_comes_from_the_upstream(
    async_lifespan_client: LifespanAsyncClient,
) -> None:
    """The async view answers with the upstream's quote, through the shared client."""
    response = await async_lifespan_client.get("/quotes/1/")

    assert response.status_code == 200
    assert response.json() == find_quote(1)


# --8<-- [end:async_test]


async def test_a_quote_missing_upstream_is_404(
    async_lifespan_client: LifespanAsyncClient,
) -> None:
    """A quote the upstream does not have is a 404 with a JSON error."""
    response = await async_lifespan_client.get("/quotes/99/")

    assert response.status_code == 404
    assert response.json() == {"error": "The upstream has no quote 99."}


# --8<-- [start:sync_test]
def test_stats_counts_views_and_upstream_answers(
    lifespan_client: LifespanClient,
) -> None:
    """The sync view shows what the async view and the client's hook counted."""
    lifespan_client.get("/quotes/1/")
    lifespan_client.get("/quotes/99/")

    response = lifespan_client.get("/stats/")

    assert response.json() == {"quote views": 2, "upstream 200": 1, "upstream 404": 1}


# --8<-- [end:sync_test]


class TestFavourites:
    async def test_saved_quotes_are_listed(
        self, async_lifespan_client: LifespanAsyncClient
    ) -> None:
        """Quotes posted to the class-based view are committed and listed afterwards."""
        saved = await async_lifespan_client.post("/favourites/", {"number": [2, 1]})

        response = await async_lifespan_client.get("/favourites/")

        assert saved.status_code == 201
        assert response.json() == {"favourites": [find_quote(1), find_quote(2)]}

    # --8<-- [start:rollback_test]
    async def test_a_failed_save_rolls_back(
        self, async_lifespan_client: LifespanAsyncClient
    ) -> None:
        """When one posted quote is missing upstream, none of the others is saved."""
        failed = await async_lifespan_client.post("/favourites/", {"number": [1, 99]})

        response = await async_lifespan_client.get("/favourites/")

        assert failed.status_code == 404
        assert response.json() == {"favourites": []}

    # --8<-- [end:rollback_test]

    async def test_a_post_without_numbers_is_400(
        self, async_lifespan_client: LifespanAsyncClient
    ) -> None:
        """A post with no number, or one that is not an integer, is refused."""
        empty = await async_lifespan_client.post("/favourites/", {})
        wrong = await async_lifespan_client.post("/favourites/", {"number": "one"})

        assert (empty.status_code, wrong.status_code) == (400, 400)

    async def test_they_outlive_a_restart(self) -> None:
        """The next lifespan reopens the same SQLite file and finds what was saved."""
        async with LifespanAsyncClient() as client:
            await client.post("/favourites/", {"number": 3})

        async with LifespanAsyncClient() as client:
            response = await client.get("/favourites/")

        assert response.json() == {"favourites": [find_quote(3)]}


class TestUpstreamUrl:
    def test_requests_find_it_on_the_server_they_came_in_to(
        self, example_settings: Any
    ) -> None:
        """Unset EXAMPLE_UPSTREAM_URL: requests call /upstream/ on their server."""
        example_settings.EXAMPLE_UPSTREAM_URL = None
        called: list[str] = []

        def upstream(request: httpx.Request) -> httpx.Response:
            called.append(str(request.url))
            return answer_as_upstream(request)

        with (
            override(Container.upstream_transport, httpx.MockTransport(upstream)),
            LifespanClient(application=application) as client,
        ):
            quote = client.get(
                "/quotes/1/", SERVER_NAME="127.0.0.1", SERVER_PORT="8123"
            )
            saved = client.post(
                "/favourites/",
                {"number": 2},
                SERVER_NAME="localhost",
                SERVER_PORT="9001",
            )

        assert quote.json() == find_quote(1)
        assert saved.status_code == 201
        assert called == [
            "http://127.0.0.1:8123/upstream/quotes/1/",
            "http://localhost:9001/upstream/quotes/2/",
        ]

    def test_the_setting_wins(self, example_settings: Any) -> None:
        """EXAMPLE_UPSTREAM_URL, where set, is the upstream of every request."""
        with LifespanClient(application=application) as client:
            response = client.get("/quotes/3/")

        assert response.json() == find_quote(3)  # the conftest's upstream.test

    @pytest.mark.parametrize(
        ("scope", "url"),
        [
            ({"server": ("127.0.0.1", 8001)}, "http://127.0.0.1:8001"),
            ({"server": ("::1", 8443), "scheme": "https"}, "https://[::1]:8443"),
            ({"server": ("/tmp/uvicorn.sock", None)}, None),
            ({}, None),
        ],
        ids=["ipv4", "ipv6-https", "unix-socket", "no-server"],
    )
    def test_server_url(self, scope: dict[str, Any], url: str | None) -> None:
        """A scope's server address becomes a URL, or None where it has none."""
        assert server_url(cast("Any", scope)) == url


async def test_status_reads_request_state(
    async_lifespan_client: LifespanAsyncClient,
) -> None:
    """The view without inject finds the app-scoped resources on request.state."""
    response = await async_lifespan_client.get("/status/")

    assert response.json() == {
        "resources": ["database", "http_client", "metrics"],
        "http_client_open": True,
        "counted": {},
    }


async def test_lifespan_page_lists_each_resource(
    async_lifespan_client: LifespanAsyncClient,
) -> None:
    """The lifespan page shows each resource started, and what it started after."""
    response = await async_lifespan_client.get("/lifespan/")

    body = response.json()
    assert body["lifespan"] == "running"
    assert {name: entry["depends_on"] for name, entry in body["resources"].items()} == {
        "Container.metrics": [],
        "Container.http_client": ["Container.metrics"],
        "Container.database": [],
    }
    assert {entry["status"] for entry in body["resources"].values()} == {"started"}
    assert all(entry["started_in_ms"] >= 0 for entry in body["resources"].values())


async def test_ready_checks_the_database(
    async_lifespan_client: LifespanAsyncClient,
) -> None:
    """Readiness is 200 once the database answers its check."""
    response = await async_lifespan_client.get("/health/ready/")

    assert response.status_code == 200
    assert response.json()["resources"]["database"]["status"] == "ok"


# --8<-- [start:startup_failure_test]
async def test_a_database_that_cannot_open_stops_the_startup(
    example_settings: Any,
) -> None:
    """A database file in a missing folder fails the startup, naming the resource."""
    example_settings.EXAMPLE_DATABASE = "/nonexistent/folder/example.sqlite3"

    with pytest.raises(StartupError) as raised:
        async with LifespanAsyncClient():
            pass

    assert raised.value.resource == "Container.database"
    assert "unable to open database file" in str(raised.value)


# --8<-- [end:startup_failure_test]


def test_shutdown_logs_the_counters(caplog: pytest.LogCaptureFixture) -> None:
    """Closing the sync metrics resource logs what this process counted."""
    caplog.set_level(logging.INFO, logger="example_app")

    with LifespanClient() as client:
        client.get("/quotes/2/")

    assert "Counted in this process: {'quote views': 1, 'upstream 200': 1}" in (
        caplog.text
    )


def test_the_command_lists_saved_quotes() -> None:
    """The management command reads the database with its own lifespan and scope."""
    with LifespanClient() as client:
        client.post("/favourites/", {"number": [1, 3]})
    out = io.StringIO()

    call_command(Command(), stdout=out)

    assert out.getvalue().splitlines() == [
        "1. Simple is better than complex.",
        "3. Now is better than never.",
    ]


# --8<-- [start:async_command_test]
def test_the_async_command_saves_quotes() -> None:
    """The async command fetches with the shared client, saving in one transaction."""
    out = io.StringIO()

    call_command(SaveQuotes(), "3", "1", stdout=out)
    call_command(Command(), stdout=out)

    assert out.getvalue().splitlines() == [
        "Saved 2 quotes.",
        "1. Simple is better than complex.",
        "3. Now is better than never.",
    ]


# --8<-- [end:async_command_test]


def test_the_async_command_saves_nothing_when_one_is_missing() -> None:
    """A quote missing upstream fails the command and rolls back the ones before it."""
    out = io.StringIO()

    with pytest.raises(CommandError, match="no quote 99"):
        call_command(SaveQuotes(), "1", "99")
    call_command(Command(), stdout=out)

    assert out.getvalue() == ""


# --8<-- [start:consumer_test]
async def test_the_quotes_socket_answers_each_number(lifespan: State) -> None:
    """The WebSocket consumer answers quote numbers, and a missing one with an error."""
    communicator = WebsocketCommunicator(application, "/ws/quotes/")
    connected, _ = await communicator.connect()
    assert connected

    await communicator.send_to(text_data="1")
    found = await communicator.receive_json_from()
    await communicator.send_to(text_data="99")
    missing = await communicator.receive_json_from()
    await communicator.disconnect()

    assert found["text"] == "Simple is better than complex."
    assert missing == {"error": "The upstream has no quote 99."}


# --8<-- [end:consumer_test]
