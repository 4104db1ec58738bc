"""Faults that used to escape the lifespan, under the servers with no startup limit.

uvicorn and granian bound neither startup nor shutdown themselves, so lifespan_di's
own bounds are all there is. Each test asserts through the record file that every
resource that started was stopped exactly once, and that the process ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

from tests.servers.conftest import Launch
from tests.servers.harness import (
    GRANIAN,
    RESOURCES,
    UVICORN,
    Spec,
    assert_each_started_resource_stopped_once,
)
from tests.servers.test_faults import stop_cleanly
from tests.servers.test_matrix import (
    FAILED_STARTUP_EXIT,
    FAILED_STARTUP_LOG,
    SIGTERM_EXIT,
    wait_exit_serving_nothing,
)

pytestmark = [
    pytest.mark.servers,
    pytest.mark.parametrize("spec", [UVICORN, GRANIAN], ids=str),
]


class TestShutdown:
    def test_teardown_raising_cancelled_error_is_reported(
        self, launch: Launch, spec: Spec
    ) -> None:
        """A teardown raising its own CancelledError is reported as that resource's failure; the others close, the process ends."""
        server = launch(spec, LIFESPAN_DI_TEST_STOP_CANCEL="pool")
        server.wait_ready()

        exit_code = stop_cleanly(server)

        log = server.log()
        assert exit_code == SIGTERM_EXIT[spec.id], log
        assert "'Container.pool' (CancelledError())" in log
        assert server.names()[3:] == [f"stop:{n}" for n in reversed(RESOURCES)]
        assert_each_started_resource_stopped_once(server)

    @pytest.mark.parametrize("interrupted", ["pool", "config"])
    def test_teardown_raising_keyboard_interrupt_closes_the_others(
        self, launch: Launch, spec: Spec, interrupted: str
    ) -> None:
        """KeyboardInterrupt from an async or a sync (threaded) teardown: every other resource still closes, the failure is reported, the process ends."""
        server = launch(spec, LIFESPAN_DI_TEST_STOP_INTERRUPT=interrupted)
        server.wait_ready()

        stop_cleanly(server)

        log = server.log()
        assert f"'Container.{interrupted}' (KeyboardInterrupt())" in log
        assert server.names()[3:] == [f"stop:{n}" for n in reversed(RESOURCES)]
        assert_each_started_resource_stopped_once(server)


class TestStartup:
    def test_start_raising_cancelled_error_fails_the_startup(
        self, launch: Launch, spec: Spec
    ) -> None:
        """A start raising its own CancelledError fails the startup naming it; the server exits without serving."""
        server = launch(spec, LIFESPAN_DI_TEST_START_CANCEL="pool")

        exit_code = wait_exit_serving_nothing(server)

        log = server.log()
        assert exit_code in FAILED_STARTUP_EXIT[spec.id], log
        assert FAILED_STARTUP_LOG[spec.id] in log
        assert (
            "Cannot start resource 'Container.pool': it raised CancelledError(). "
            "Resources started before it were shut down: Container.config."
        ) in log
        server.wait_group_gone()
        assert server.names() == ["start:config", "stop:config"]

    def test_start_ignoring_cancellation_cannot_hold_the_failure_back(
        self, launch: Launch, spec: Spec
    ) -> None:
        """A start that goes on for 30 s after its cancellation: startup fails after STARTUP_TIMEOUT and a 1 s grace, naming it as possibly open."""
        began = time.monotonic()
        server = launch(
            spec,
            LIFESPAN_DI_TEST_STUBBORN="cache",
            LIFESPAN_DI_TEST_STARTUP_TIMEOUT="2",
        )

        exit_code = wait_exit_serving_nothing(server)

        elapsed = time.monotonic() - began
        log = server.log()
        assert exit_code in FAILED_STARTUP_EXIT[spec.id], log
        assert (
            "'Container.cache' was still starting 1.0 s after it was cancelled"
        ) in log
        # 2 s of timeout and 1 s of grace, plus interpreter and Django start-up on a
        # loaded machine; the stubborn start alone would take 30 s more.
        assert 3.0 < elapsed < 25.0
        server.wait_group_gone()
        assert "stubborn:cache" in server.names()
        assert_each_started_resource_stopped_once(server)

    def test_blocking_plain_function_does_not_stall_the_startup_timeout(
        self, launch: Launch, spec: Spec
    ) -> None:
        """A plain-function resource that blocks forever starts in a worker thread: the timeout fires, names it, and the process still exits."""
        began = time.monotonic()
        server = launch(
            spec,
            LIFESPAN_DI_TEST_CONTAINER="Blocking",
            LIFESPAN_DI_TEST_STARTUP_TIMEOUT="2",
        )

        exit_code = wait_exit_serving_nothing(server)

        elapsed = time.monotonic() - began
        log = server.log()
        assert exit_code in FAILED_STARTUP_EXIT[spec.id], log
        assert (
            "Cannot start resource 'Blocking.connect': startup did not finish within "
            "STARTUP_TIMEOUT (2.0 s)."
        ) in log
        assert "'Blocking.connect' was still starting" in log
        assert elapsed < 25.0
        server.wait_group_gone()
        assert "start:connect" not in server.names()
        assert_each_started_resource_stopped_once(server)


def get_concurrently(base_url: str, path: str, count: int) -> list[int]:
    """GET ``path`` ``count`` times at once; return the status codes."""

    async def get_all() -> list[int]:
        async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
            responses = await asyncio.gather(*(client.get(path) for _ in range(count)))
        return [response.status_code for response in responses]

    return asyncio.run(get_all())


class TestRequestResources:
    def test_slow_sync_teardowns_run_in_threads_concurrently(
        self, launch: Launch, spec: Spec
    ) -> None:
        """Ten concurrent requests whose sync request resource takes 1 s to close: opened and closed in worker threads, all closed in far less than the 10 s the loop would take."""
        server = launch(spec, LIFESPAN_DI_TEST_SESSION_STOP_SECONDS="1")
        server.wait_ready()
        began = time.monotonic()

        statuses = get_concurrently(server.base_url, "/sessions/", 10)
        server.wait_for_events("session:close", 10)
        elapsed = time.monotonic() - began
        exit_code = stop_cleanly(server)

        assert statuses == [200] * 10
        assert elapsed < 5.0
        places = [
            name.split(" ")[1] for name in server.names() if name.startswith("session")
        ]
        assert places == ["thread"] * 20
        assert exit_code == SIGTERM_EXIT[spec.id], server.log()
        assert_each_started_resource_stopped_once(server)

    def test_request_teardown_raising_cancelled_error_closes_the_others(
        self, launch: Launch, spec: Spec
    ) -> None:
        """A request resource's teardown raising its own CancelledError: the request's other resource still closes, and the server goes on serving."""
        server = launch(spec, LIFESPAN_DI_TEST_SESSION_STOP_RAISE="cancel")
        server.wait_ready()

        with server.client() as client:
            first = client.get("/sessions/")
            server.wait_for_events("unit:close", 1)
            second = client.get("/sessions/")
            server.wait_for_events("unit:close", 2)
        exit_code = stop_cleanly(server)

        assert (first.status_code, second.status_code) == (200, 200)
        assert "Closing the request resource 'session' failed." in server.log()
        assert sum(name.startswith("session:close") for name in server.names()) == 2
        assert exit_code == SIGTERM_EXIT[spec.id], server.log()
        assert_each_started_resource_stopped_once(server)

    def test_request_teardown_raising_keyboard_interrupt_is_raised_after_the_others(
        self, launch: Launch, spec: Spec
    ) -> None:
        """KeyboardInterrupt from a request resource's teardown is raised out of the application once the request's other resource closed; whatever the server then does, no app resource closes twice."""
        server = launch(spec, LIFESPAN_DI_TEST_SESSION_STOP_RAISE="interrupt")
        server.wait_ready()

        with server.client() as client, contextlib.suppress(httpx.TransportError):
            client.get("/sessions/")
        server.wait_for_events("unit:close", 1)
        with contextlib.suppress(AssertionError):  # the server may have exited
            server.wait_exit(timeout=2.0)
        assert server.proc is not None
        if server.proc.poll() is None:
            stop_cleanly(server)
        server.wait_group_gone()

        log = server.log()
        assert "Closing the request resource 'session' failed." in log
        assert "raise KeyboardInterrupt" in log
        stopped = [name for name in server.names() if name.startswith("stop:")]
        assert len(stopped) == len(set(stopped))
