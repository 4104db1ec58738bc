"""The server matrix: each lifespan server serves, drains, and refuses a failed startup.

Exit codes and log lines are what each server was measured to do (uvicorn 0.54,
uvicorn-worker 0.4, gunicorn 27.0, hypercorn 0.18, granian 2.8; docs/deploying.md),
pinned so that a server release that changes them is noticed; docs/deploying.md says
what to do about each.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.servers.conftest import Launch
from tests.servers.harness import (
    GRANIAN,
    GUNICORN_ASGI,
    GUNICORN_UVICORN,
    HYPERCORN,
    LIFESPAN_SERVERS,
    RESOURCES,
    UVICORN,
    Server,
    Spec,
    assert_each_started_resource_stopped_once,
)

pytestmark = pytest.mark.servers

IDS = [spec.id for spec in LIFESPAN_SERVERS]

SIGTERM_EXIT = {
    # uvicorn (>= 0.29) shuts down gracefully, then re-raises the signal, so a clean
    # stop ends as killed by SIGTERM. Its multi-worker supervisor exits 0.
    "uvicorn": -signal.SIGTERM,
    "uvicorn-workers": 0,
    "gunicorn-uvicorn": 0,
    "gunicorn-asgi": 0,
    "hypercorn": 0,
    "granian": 0,
}
FAILED_STARTUP_EXIT: dict[str, set[int]] = {
    "uvicorn": {3},
    # Measured, cannot be fixed in the application: the supervisor of
    # `uvicorn --workers N` and hypercorn exit 0 after `lifespan.startup.failed`.
    "uvicorn-workers": {0},
    # With several workers, gunicorn exits 3, or 1 when a second worker fails while
    # the arbiter halts (HaltServer raised inside halt(), with a traceback).
    "gunicorn-uvicorn": {1, 3},
    "gunicorn-asgi": {3},
    "hypercorn": {0},
    "granian": {1},
}
FAILED_STARTUP_LOG = {
    "uvicorn": "Application startup failed. Exiting.",
    "uvicorn-workers": "failed to start, stopping the parent process.",
    "gunicorn-uvicorn": "Worker failed to boot.",
    "gunicorn-asgi": "Worker failed to boot.",
    "hypercorn": "LifespanFailureError: Lifespan failure in startup.",
    "granian": "ASGI lifespan startup failed",
}


@pytest.fixture(scope="class", params=LIFESPAN_SERVERS, ids=IDS)
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per class and server kind, serving with every worker started."""
    spec: Spec = request.param
    server = Server(spec, tmp_path_factory.mktemp(spec.id))
    try:
        server.start()
        server.wait_ready()
        server.wait_started()
        yield server
    finally:
        server.stop()


class TestServing:
    """The checks share one server process per kind; the SIGTERM check ends it, last."""

    def test_sync_and_async_views_see_state_and_injected_resources(
        self, running: Server
    ) -> None:
        """Sync and async views get the started resources from request.state and inject, the same object in both, with dependencies wired."""
        with running.client() as client:
            state = client.get("/state/")
            sync = client.get("/sync-inject/")
            async_ = client.get("/async-inject/")

        assert state.status_code == sync.status_code == async_.status_code == 200
        assert state.json()["names"] == sorted(RESOURCES)
        assert state.json()["cache_uses_pool"] is True
        assert state.json()["closed"] is False
        for answer in (sync.json(), async_.json()):
            assert answer["pool_type"] == "Handle"
            assert answer["same_as_state"] is True
            assert answer["cache_uses_pool"] is True

    def test_each_worker_starts_its_own_resources_exactly_once(
        self, running: Server
    ) -> None:
        """Each worker process starts every resource once, in dependency order."""
        workers = running.by_pid()

        assert len(workers) == running.spec.workers, running.log()
        for names in workers.values():
            starts = [name for name in names if name.startswith("start:")]
            assert starts == [f"start:{name}" for name in RESOURCES]

    def test_sigterm_lets_the_in_flight_request_finish_then_closes_in_reverse(
        self, running: Server
    ) -> None:
        """On SIGTERM a request in flight completes with its resource open, then each worker closes its resources once, newest first."""
        with running.client(timeout=30) as client, ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(client.get, "/slow/", params={"seconds": "1.5"})
            running.wait_for_event("view:slow:begin")

            running.send_signal(signal.SIGTERM)
            response = in_flight.result(timeout=30)
            exit_code = running.wait_exit()

        assert response.status_code == 200
        assert response.json() == {"closed": False}
        assert exit_code == SIGTERM_EXIT[running.spec.id], running.log()
        running.wait_group_gone()
        workers = running.by_pid()
        assert len(workers) == running.spec.workers
        for names in workers.values():
            stops = [name for name in names if name.startswith("stop:")]
            assert stops == [f"stop:{name}" for name in reversed(RESOURCES)]
            if "view:slow:end" in names:
                assert names.index("view:slow:end") < names.index(stops[0])
        assert_each_started_resource_stopped_once(running)


def wait_exit_serving_nothing(server: Server, timeout: float = 60.0) -> int:
    """Poll the server until it exits; fail if it ever answers a request."""
    deadline = time.monotonic() + timeout
    assert server.proc is not None
    with httpx.Client(base_url=server.base_url, timeout=1.0) as client:
        while server.proc.poll() is None:
            if time.monotonic() > deadline:
                msg = f"{server.spec.id} still runs after {timeout} s:\n{server.log()}"
                raise AssertionError(msg)
            try:
                response = client.get("/ready/")
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            msg = (
                f"{server.spec.id} served {response.status_code} after a failed startup"
            )
            raise AssertionError(msg)
    return server.proc.returncode


@pytest.mark.parametrize("spec", LIFESPAN_SERVERS, ids=IDS)
def test_resource_failing_at_startup_stops_the_server(
    launch: Launch, spec: Spec
) -> None:
    """A resource that raises at startup stops the server before it serves, with the message naming it and its started dependency closed."""
    server = launch(spec, LIFESPAN_DI_TEST_FAIL="pool")

    exit_code = wait_exit_serving_nothing(server)

    log = server.log()
    assert exit_code in FAILED_STARTUP_EXIT[spec.id], log
    assert FAILED_STARTUP_LOG[spec.id] in log
    assert (
        "Cannot start resource 'Container.pool': it raised "
        "ConnectionRefusedError('pool cannot connect'). Resources started before it "
        "were shut down: Container.config."
    ) in log
    server.wait_group_gone()
    assert "start:pool" not in server.names()
    assert "start:config" in server.names()
    assert_each_started_resource_stopped_once(server)


@pytest.mark.parametrize(
    "spec", [UVICORN, GUNICORN_UVICORN, GUNICORN_ASGI, HYPERCORN, GRANIAN], ids=str
)
def test_hung_resource_fails_startup_within_startup_timeout(
    launch: Launch, spec: Spec
) -> None:
    """A resource that never finishes starting fails the startup after STARTUP_TIMEOUT, and the ones started before it are closed."""
    began = time.monotonic()
    server = launch(
        spec, LIFESPAN_DI_TEST_HANG="cache", LIFESPAN_DI_TEST_STARTUP_TIMEOUT="2"
    )

    exit_code = wait_exit_serving_nothing(server)

    elapsed = time.monotonic() - began
    log = server.log()
    assert exit_code in FAILED_STARTUP_EXIT[spec.id], log
    assert FAILED_STARTUP_LOG[spec.id] in log
    assert (
        "Cannot start resource 'Container.cache': startup did not finish within "
        "STARTUP_TIMEOUT (2.0 s). Resources started before it were shut down: "
        "Container.pool, Container.config."
    ) in log
    # 2 s of timeout plus interpreter and Django start-up, on a loaded 2-core machine.
    assert 2.0 < elapsed < 25.0
    server.wait_group_gone()
    assert "hang:cache" in server.names()
    assert_each_started_resource_stopped_once(server)
