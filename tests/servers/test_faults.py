"""Faults in a real server process, with nothing leaked.

uvicorn (one process, ``--lifespan on``) is the reference server here: the engine's
fault matrix is in tests/test_engine.py and the protocol's in tests/test_handler.py;
these tests prove the same guarantees survive a real process, its signals and its
exit. Every test asserts through the record file that each resource that started was
stopped exactly once, and that the process ended.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.servers.conftest import Launch
from tests.servers.harness import (
    LIFESPAN_SERVERS,
    RESOURCES,
    UVICORN,
    Server,
    Spec,
    assert_each_started_resource_stopped_once,
)

pytestmark = pytest.mark.servers

UVICORN_FAILED_STARTUP = 3
UVICORN_SIGTERM = -signal.SIGTERM  # graceful stop, then the signal is re-raised
# gunicorn SIGKILLs uvicorn workers on SIGINT, resources open: see test_pinned.py.
SIGNALS_DURING_STARTUP = [
    pytest.param(spec, sig, id=f"{spec.id}-{sig.name}")
    for spec in LIFESPAN_SERVERS
    for sig in (signal.SIGTERM, signal.SIGINT)
    if (spec.id, sig) != ("gunicorn-uvicorn", signal.SIGINT)
]


def stop_cleanly(server: Server) -> int:
    """SIGTERM the server and return its exit code once its whole group is gone."""
    server.send_signal(signal.SIGTERM)
    exit_code = server.wait_exit()
    server.wait_group_gone()
    return exit_code


class TestStartup:
    @pytest.mark.parametrize(
        ("failing", "started", "message"),
        [
            pytest.param(
                "config",
                [],
                "Cannot start resource 'Container.config': it raised "
                "ConnectionRefusedError('config cannot be read'). No other resource "
                "had started.",
                id="first",
            ),
            pytest.param(
                "pool",
                ["config"],
                "Cannot start resource 'Container.pool': it raised "
                "ConnectionRefusedError('pool cannot connect'). Resources started "
                "before it were shut down: Container.config.",
                id="middle",
            ),
            pytest.param(
                "cache",
                ["config", "pool"],
                "Cannot start resource 'Container.cache': it raised "
                "ConnectionRefusedError('cache cannot connect'). Resources started "
                "before it were shut down: Container.pool, Container.config.",
                id="last",
            ),
            pytest.param(
                "pool_user",
                ["config", "pool"],
                "Cannot start resource 'Container.cache': it raised "
                "ValueError('pool_user cannot be built'). Resources started before "
                "it were shut down: Container.pool, Container.config.",
                id="dependency-of-a-dependency",
            ),
        ],
    )
    def test_failure_rolls_back_what_started_and_exits(
        self, launch: Launch, failing: str, started: list[str], message: str
    ) -> None:
        """A failure anywhere in the chain stops the resources started before it, newest first, and uvicorn exits 3 with the message."""
        server = launch(UVICORN, LIFESPAN_DI_TEST_FAIL=failing)

        exit_code = server.wait_exit()

        assert exit_code == UVICORN_FAILED_STARTUP, server.log()
        assert message in server.log()
        server.wait_group_gone()
        assert server.names() == [
            *(f"start:{name}" for name in started),
            *(f"stop:{name}" for name in reversed(started)),
        ]

    @pytest.mark.parametrize(("spec", "sig"), SIGNALS_DURING_STARTUP)
    def test_signal_during_a_slow_startup_closes_everything_once(
        self, launch: Launch, spec: Spec, sig: signal.Signals
    ) -> None:
        """A stop signal during a slow startup lets the startup finish, then every resource is closed once and the process ends."""
        server = launch(
            spec,
            LIFESPAN_DI_TEST_SLOW="cache",
            LIFESPAN_DI_TEST_SLOW_SECONDS="2",
        )
        # Measured on every server: the signal is handled once startup is over; no
        # server cancels a startup in progress.
        server.wait_for_event("start:pool")

        server.send_signal(sig)
        server.wait_exit()

        server.wait_group_gone()
        for names in server.by_pid().values():
            assert names[-3:] == [f"stop:{name}" for name in reversed(RESOURCES)]
        assert_each_started_resource_stopped_once(server)


class TestShutdown:
    @pytest.mark.parametrize(
        "failing", [["pool"], ["config", "cache"]], ids=["one", "several"]
    )
    def test_failing_teardowns_do_not_keep_the_others_open(
        self, launch: Launch, failing: list[str]
    ) -> None:
        """When teardowns raise, every other resource still closes, newest first, and the failures are reported together."""
        server = launch(UVICORN, LIFESPAN_DI_TEST_STOP_FAIL=",".join(failing))
        server.wait_ready()

        exit_code = stop_cleanly(server)

        log = server.log()
        assert exit_code == UVICORN_SIGTERM, log
        assert server.names()[3:] == [f"stop:{n}" for n in reversed(RESOURCES)]
        assert f"{len(failing)} of 3 resources failed to stop" in log
        for name in failing:
            assert f"{name} teardown failed" in log
        assert "Application shutdown failed" in log
        assert_each_started_resource_stopped_once(server)

    def test_hung_teardown_is_abandoned_after_shutdown_timeout(
        self, launch: Launch
    ) -> None:
        """A teardown that hangs is given up after SHUTDOWN_TIMEOUT; the resources after it still close and the process ends."""
        server = launch(
            UVICORN,
            LIFESPAN_DI_TEST_STOP_HANG="pool",
            LIFESPAN_DI_TEST_SHUTDOWN_TIMEOUT="1",
        )
        server.wait_ready()
        began = time.monotonic()

        exit_code = stop_cleanly(server)

        elapsed = time.monotonic() - began
        log = server.log()
        assert exit_code == UVICORN_SIGTERM, log
        assert server.names()[3:] == [
            "stop:cache",
            "stop:pool",
            "stop-hang:pool",
            "stop:config",
        ]
        assert (
            "Resource 'Container.pool' did not shut down within SHUTDOWN_TIMEOUT "
            "(1.0 s)."
        ) in log
        assert 1.0 < elapsed < 20.0
        assert_each_started_resource_stopped_once(server)


class TestRequests:
    def test_view_raising_while_using_resources_leaves_them_open(
        self, launch: Launch
    ) -> None:
        """A view that raises while using a resource gets a 500; the resources stay open for later requests and close once at shutdown."""
        server = launch(UVICORN)
        server.wait_ready()

        with server.client() as client:
            failed = client.get("/boom/")
            after = client.get("/state/")
        exit_code = stop_cleanly(server)

        assert failed.status_code == 500
        assert "RuntimeError: boom while using pool" in server.log()
        assert after.status_code == 200
        assert after.json()["closed"] is False
        assert exit_code == UVICORN_SIGTERM
        assert_each_started_resource_stopped_once(server)

    def test_client_disconnecting_mid_stream_ends_the_stream_only(
        self, launch: Launch
    ) -> None:
        """A client that disconnects mid-stream ends the streaming body; the resources stay open and close once at shutdown."""
        server = launch(UVICORN)
        server.wait_ready()

        with (
            server.client() as client,
            client.stream("GET", "/stream/", params={"chunks": "200"}) as response,
        ):
            status = response.status_code
            lines = response.iter_lines()
            first = [next(lines) for _ in range(3)]
        server.wait_for_event("stream:closed:done")
        with server.client() as client:
            after = client.get("/state/")
        exit_code = stop_cleanly(server)

        names = server.names()
        assert status == 200
        assert all(line == "x" * 1024 for line in first)
        assert "stream:end" not in names  # it did not run to its end
        assert "stream:used-closed" not in names
        assert after.json()["closed"] is False
        assert exit_code == UVICORN_SIGTERM
        assert names.index("stream:closed:done") < names.index("stop:cache")
        assert_each_started_resource_stopped_once(server)
