"""gunicorn behaviours the application cannot change, pinned as measured.

docs/deploying.md tells you what to do about each: send SIGTERM, not SIGINT, and set
``--graceful-timeout`` above your longest request plus your resources' teardown.
"""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.servers.conftest import Launch
from tests.servers.harness import (
    GUNICORN_ASGI,
    GUNICORN_UVICORN,
    RESOURCES,
    Server,
    Spec,
    assert_each_started_resource_stopped_once,
)

pytestmark = pytest.mark.servers

SHORT_GRACE = ("--graceful-timeout", "2")


def signal_with_request_in_flight(
    server: Server, sig: signal.Signals, seconds: str
) -> httpx.Response | Exception:
    """Send ``sig`` while /slow/ runs; return its response, or what the client got."""
    server.wait_ready()
    server.wait_started()
    with server.client(timeout=30) as client, ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(client.get, "/slow/", params={"seconds": seconds})
        server.wait_for_event("view:slow:begin")
        server.send_signal(sig)
        try:
            return in_flight.result(timeout=30)
        except httpx.TransportError as error:
            return error


@pytest.mark.parametrize("spec", [GUNICORN_UVICORN, GUNICORN_ASGI], ids=str)
def test_gunicorn_kills_workers_still_busy_at_the_graceful_timeout(
    launch: Launch, spec: Spec
) -> None:
    """gunicorn SIGKILLs a worker whose request outlasts --graceful-timeout: the request is cut and that worker's resources never close."""
    server = launch(spec, extra=SHORT_GRACE)

    outcome = signal_with_request_in_flight(server, signal.SIGTERM, "8")
    exit_code = server.wait_exit()

    server.wait_group_gone()
    assert isinstance(outcome, httpx.RemoteProtocolError)
    assert exit_code == 0, server.log()
    busy = next(e.pid for e in server.events() if e.name == "view:slow:begin")
    assert "view:slow:end" not in server.names()
    assert [n for n in server.by_pid()[busy] if n.startswith("stop:")] == []
    # Idle workers shut down cleanly.
    for pid, names in server.by_pid().items():
        if pid != busy:
            assert names[-3:] == [f"stop:{n}" for n in reversed(RESOURCES)]


def test_gunicorn_sigint_sigkills_uvicorn_workers_without_shutdown(
    launch: Launch,
) -> None:
    """On SIGINT gunicorn stops waiting for UvicornWorker workers and SIGKILLs them at --graceful-timeout: no resource closes."""
    server = launch(GUNICORN_UVICORN, extra=SHORT_GRACE)

    signal_with_request_in_flight(server, signal.SIGINT, "8")
    exit_code = server.wait_exit()

    server.wait_group_gone()
    assert exit_code == 0
    assert "was sent SIGKILL!" in server.log()
    assert not [n for n in server.names() if n.startswith("stop:")]


def test_gunicorn_asgi_sigint_cuts_requests_but_closes_resources(
    launch: Launch,
) -> None:
    """On SIGINT gunicorn's asgi worker drops the request in flight at once, then still runs the lifespan shutdown."""
    server = launch(GUNICORN_ASGI)

    outcome = signal_with_request_in_flight(server, signal.SIGINT, "8")
    exit_code = server.wait_exit()

    server.wait_group_gone()
    assert isinstance(outcome, httpx.RemoteProtocolError)
    assert exit_code == 0
    assert "view:slow:end" not in server.names()
    assert server.names()[-3:] == [f"stop:{n}" for n in reversed(RESOURCES)]
    assert_each_started_resource_stopped_once(server)
