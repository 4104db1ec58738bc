"""Django Channels under real servers: lifespan_di's router and consumer mixin.

Each test serves tests/servers/channels_asgi.py (lifespan_di's ``ProtocolTypeRouter``
over tests/servers/consumers.py) from a real server process, talks to it with a real
WebSocket client (``websockets``' sync client), and reads the record file of
tests/servers/containers.py: ``start:``/``stop:`` of the app resources, and
``<resource>:open:<id> <where>`` / ``<resource>:close:<id> <where>`` of the request
resources. A consumer handles one connection's messages one at a time, so each
message's request resource must close before the next one opens.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import ClientConnection, connect

from tests.processes import READY_TIMEOUT
from tests.servers.conftest import Launch
from tests.servers.harness import (
    APP,
    DAPHNE,
    RESOURCES,
    UVICORN,
    Server,
    Spec,
    assert_each_started_resource_stopped_once,
)

pytestmark = pytest.mark.servers

CHANNELS_APP = "tests.servers.channels_asgi:application"
SETTINGS = "tests.servers.channels_settings"
WS_TIMEOUT = 30.0
"""Bound on each WebSocket handshake, receive and close (not what the tests prove)."""
MESSAGES = 20
# uvicorn (>= 0.29) re-raises SIGTERM after a graceful shutdown (tests/servers/test_matrix.py).
SIGTERM_EXIT = -signal.SIGTERM


@dataclasses.dataclass(frozen=True)
class ChannelsSpec(Spec):
    """A server of the matrix, serving the Channels application instead of APP."""

    app: str = CHANNELS_APP

    def command(self, fd: int | None, port: int, extra: tuple[str, ...]) -> list[str]:
        return [
            self.app if part == APP else part
            for part in super().command(fd, port, extra)
        ]


def channels(spec: Spec, **changes: Any) -> ChannelsSpec:
    """``spec``'s server and options, with ``changes``, serving the Channels app."""
    fields: dict[str, Any] = {
        f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)
    }
    return ChannelsSpec(**{**fields, **changes})


UVICORN_CHANNELS = channels(UVICORN, id="uvicorn-channels")
UVICORN_AUTO = channels(
    UVICORN,
    id="uvicorn-channels-lifespan-auto",
    recommended=("--timeout-graceful-shutdown", "30"),  # no --lifespan: "auto"
)
DAPHNE_CHANNELS = channels(DAPHNE, id="daphne-channels")

Serve = Callable[[Spec], Server]


@pytest.fixture
def serve(launch: Launch) -> Serve:
    """Start a server on the Channels project and wait until it serves (and started)."""

    def start(spec: Spec) -> Server:
        server = launch(spec, DJANGO_SETTINGS_MODULE=SETTINGS)
        server.wait_ready()
        if spec.lifespan:
            server.wait_started()
        return server

    return start


def open_ws(server: Server, path: str) -> ClientConnection:
    url = server.base_url.replace("http://", "ws://", 1) + path
    return connect(url, open_timeout=WS_TIMEOUT, close_timeout=WS_TIMEOUT)


def exchange(server: Server, path: str, messages: list[str]) -> list[str]:
    """Send each message on one connection, wait for its answer; close cleanly."""
    answers = []
    with open_ws(server, path) as ws:
        for message in messages:
            ws.send(message)
            answer = ws.recv(timeout=WS_TIMEOUT)
            assert isinstance(answer, str)
            answers.append(answer)
    return answers


def request_events(server: Server, resource: str) -> list[tuple[str, str, str]]:
    """``(event, id, where)`` of each ``<resource>:<event>:<id> [<where>]`` recorded."""
    events = []
    for name in server.names():
        if name.startswith(f"{resource}:"):
            head, _, where = name.partition(" ")
            _, event, ident = head.split(":", 2)
            events.append((event, ident, where))
    return events


def wait_for_log(server: Server, text: str, timeout: float = READY_TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log()
        if text in log:
            return log
        time.sleep(0.05)
    msg = f"{server.label}: no {text!r} in the log within {timeout} s:\n{server.log()}"
    raise AssertionError(msg)


def stop_and_assert_app_resources_once(server: Server) -> Counter[str]:
    """SIGTERM the server; each app resource started once and stopped once."""
    server.send_signal(signal.SIGTERM)
    exit_code = server.wait_exit()
    log = server.log()
    assert exit_code == SIGTERM_EXIT, log
    assert "Application shutdown complete." in log
    counts = Counter(
        name for name in server.names() if name.startswith(("start:", "stop:"))
    )
    assert counts == Counter(
        [f"start:{name}" for name in RESOURCES] + [f"stop:{name}" for name in RESOURCES]
    ), (counts, log)
    assert_each_started_resource_stopped_once(server)
    return counts


def assert_one_open_close_per_message(
    server: Server, resource: str, answer_ids: list[str], where: str
) -> None:
    """Each message opened its own resource (distinct ids), closed before the next one opened."""
    assert len(set(answer_ids)) == len(answer_ids), answer_ids
    server.wait_for_events(f"{resource}:close:", len(answer_ids))
    events = request_events(server, resource)
    expected = []
    for ident in answer_ids:
        expected += [("open", ident, where), ("close", ident, where)]
    assert events == expected, server.log()


@pytest.mark.parametrize(
    ("path", "resource", "where"),
    [("/ws/async/", "unit", "loop"), ("/ws/sync/", "session", "thread")],
    ids=["async", "sync"],
)
def test_a_consumer_opens_and_closes_a_request_resource_per_message(
    serve: Serve, path: str, resource: str, where: str
) -> None:
    """Under uvicorn --lifespan on, 20 messages open and close 20 request resources (an async consumer's on the loop, a sync one's in a thread); the app resources stop once at SIGTERM."""
    server = serve(UVICORN_CHANNELS)

    sent = [f"m{i}" for i in range(MESSAGES)]
    answers = [answer.split() for answer in exchange(server, path, sent)]

    assert [answer[0] for answer in answers] == sent
    assert all(answer[2:] == ["pool", "True"] for answer in answers), answers
    assert_one_open_close_per_message(
        server, resource, [answer[1] for answer in answers], where
    )
    stop_and_assert_app_resources_once(server)


def test_raising_handler_passes_its_exception_to_the_request_resource_teardown(
    serve: Serve,
) -> None:
    """A handler that raises hands its exception to its request resource's teardown, uvicorn logs it and drops the connection, other connections are served, and the app resources still stop once."""
    server = serve(UVICORN_CHANNELS)

    with open_ws(server, "/ws/raise/") as ws:
        ws.send("ok")
        ok_id = str(ws.recv(timeout=WS_TIMEOUT)).split()[1]
        ws.send("raise")
        # uvicorn (websockets-sansio) ends the connection without a close frame.
        with pytest.raises(ConnectionClosedError):
            ws.recv(timeout=WS_TIMEOUT)
    server.wait_for_events("guard:error:", 1)
    after = exchange(server, "/ws/async/", ["after"])

    events = request_events(server, "guard")
    assert len(events) == 4, events
    raised_id = events[2][1]
    assert events == [
        ("open", ok_id, "loop"),
        ("close", ok_id, "loop"),
        ("open", raised_id, "loop"),
        ("error", raised_id, f"ValueError: consumer failed with guard {raised_id}"),
    ]
    log = wait_for_log(server, f"ValueError: consumer failed with guard {raised_id}")
    assert "Exception in ASGI application" in log
    assert after[0].split()[2:] == ["pool", "True"]
    stop_and_assert_app_resources_once(server)


def test_connection_scoped_consumer_keeps_one_request_resource_until_disconnect(
    serve: Serve,
) -> None:
    """With resources_per = "connection", five messages share one request resource, opened once and closed once when the client disconnects."""
    server = serve(UVICORN_CHANNELS)

    with open_ws(server, "/ws/connection/") as ws:
        ids = []
        for i in range(5):
            ws.send(f"m{i}")
            ids.append(str(ws.recv(timeout=WS_TIMEOUT)).split()[1])
        while_connected = request_events(server, "unit")
    server.wait_for_events("unit:close:", 1)

    assert len(set(ids)) == 1
    assert while_connected == [("open", ids[0], "loop")]
    assert request_events(server, "unit") == [
        ("open", ids[0], "loop"),
        ("close", ids[0], "loop"),
    ]
    stop_and_assert_app_resources_once(server)


def test_uvicorn_default_lifespan_auto_starts_resources_through_the_router(
    serve: Serve,
) -> None:
    """Under uvicorn's default --lifespan auto, lifespan_di's ProtocolTypeRouter receives the lifespan, so the resources start and a consumer is served with them."""
    server = serve(UVICORN_AUTO)  # waits until config, pool and cache started

    answers = exchange(server, "/ws/async/", ["hello"])

    assert answers[0].split()[2:] == ["pool", "True"]
    assert "Application startup complete." in server.log()
    assert (
        "unsupported" not in server.log()
    )  # "ASGI 'lifespan' protocol appears unsupported."
    stop_and_assert_app_resources_once(server)


def test_daphne_consumer_reading_state_fails_with_the_consumer_message(
    serve: Serve,
) -> None:
    """Under daphne, which sends no lifespan events, a consumer reading self.state fails with lifespan_di's message naming the consumer and lifespan_di.channels."""
    server = serve(DAPHNE_CHANNELS)

    with open_ws(server, "/ws/state/") as ws:
        ws.send("pool")
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=WS_TIMEOUT)

    # What daphne does (4.2, measured): it never sends lifespan events, so nothing
    # starts; the consumer's exception ends its application task, which daphne's
    # application checker (once a second) logs as "Exception inside application:
    # <message>" before closing the WebSocket with 1011 (internal error).
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1011
    log = wait_for_log(server, "LifespanNotRunningError")
    assert (
        "Exception inside application: Cannot use self.state['pool'] in the Channels "
        "consumer tests.servers.consumers.StateConsumer: no lifespan is running"
    ) in log
    assert "lifespan_di.channels" in log
    assert "daphne, which Channels' runserver runs, never does" in log
    assert server.names() == []
