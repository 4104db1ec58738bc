"""lifespan() and with_lifespan: the resources for scripts, workers and commands."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from dependency_injector import containers, providers
from django.test import override_settings

from lifespan_di import (
    Provide,
    State,
    get_container,
    inject,
    lifespan,
    running_lifespan,
    with_lifespan,
)
from lifespan_di.core.lifespan import RUNTIME
from lifespan_di.core.loop import LoopThread, run_on
from lifespan_di.exceptions import (
    ConfigurationError,
    LifespanNotRunningError,
    StartupError,
)
from lifespan_di.testing import LifespanAsyncClient
from tests.project.broken_settings import BROKEN
from tests.project.containers import Counter
from tests.recorder import Recorder
from tests.test_lifespan_command import broken, startup_answer


@inject
def read_counter(counter: Counter = Provide["counter"]) -> Counter:
    return counter


class TestAsync:
    async def test_starts_and_stops_the_configured_container(self) -> None:
        """async with lifespan() starts the configured container, exposes it, and closes it after."""
        async with lifespan() as state:
            counter = state.counter
            inside = get_container()
            active = RUNTIME.active
            injected = read_counter()

        assert isinstance(state, State)
        assert active is not None
        assert inside is active.container
        assert injected is counter
        assert counter.closed
        assert RUNTIME.active is None

    async def test_reuses_a_running_lifespan(self) -> None:
        """Inside a running lifespan of the same container, lifespan() neither restarts nor stops it."""
        async with lifespan() as outer:
            async with lifespan() as inner:
                assert inner["counter"] is outer["counter"]
            still_open = not outer["counter"].closed

        assert still_open

    async def test_explicit_container(self, recorder: Recorder) -> None:
        """lifespan(container) runs that container, with default timeouts when the setting is absent."""

        class Small(containers.DeclarativeContainer):
            only = providers.Resource(recorder.async_resource("only"))

        with override_settings():
            from django.conf import settings

            del settings.LIFESPAN_DI
            async with lifespan(Small()) as state:
                assert state.only.name == "only"

        assert recorder.events == ["start:only", "stop:only"]


class TestSync:
    def test_sync_block_gets_resolved_values(self) -> None:
        """with lifespan() starts the resources on a private loop and gives plain values to sync code."""
        with lifespan() as state:
            counter = read_counter()
            client_type = type(state["httpx_client"]).__name__

        assert counter.closed
        assert client_type == "AsyncClient"

    def test_run_uses_the_loop_that_owns_the_resources(self) -> None:
        """run() executes coroutines on the event loop the resources were started on."""
        block = lifespan()

        async def send_nothing(client: Any) -> bool:
            return client.is_closed is False and asyncio.get_running_loop() is not None

        with block as state:
            ok = block.run(send_nothing(state.httpx_client))

        assert ok

    def test_failure_propagates_and_cleans_up(self, recorder: Recorder) -> None:
        """A startup failure raises StartupError and leaves no loop thread behind."""

        class Broken(containers.DeclarativeContainer):
            fine = providers.Resource(recorder.async_resource("fine"))
            broken = providers.Resource(
                recorder.async_resource(
                    "broken", delay=0.01, fail_start=OSError("down")
                ),
                fine=fine,
            )

        threads_before = threading.active_count()

        with pytest.raises(StartupError, match=r"Broken\.broken"), lifespan(Broken()):
            pass

        assert threading.active_count() == threads_before
        assert recorder.events == ["start:fine", "stop:fine"]

    def test_run_outside_the_block_is_refused(self) -> None:
        """run() while no lifespan runs raises LifespanNotRunningError, closing the coroutine."""
        with pytest.raises(LifespanNotRunningError, match=r"lifespan_di\.run\(\)"):
            lifespan().run(asyncio.sleep(0))


class TestWithLifespan:
    def test_sync_function(self) -> None:
        """A decorated sync function runs with the resources started, and they close after."""

        @with_lifespan
        def handle() -> Counter:
            return read_counter()

        counter = handle()

        assert counter.closed
        with pytest.raises(LifespanNotRunningError):
            read_counter()

    async def test_async_function(self) -> None:
        """A decorated async function runs inside async with lifespan()."""

        @with_lifespan
        async def task() -> Counter:
            return read_counter()

        counter = await task()

        assert counter.closed


def test_loop_thread_close_is_idempotent() -> None:
    """Closing a LoopThread twice is harmless, and its thread is gone after."""
    loop_thread = LoopThread()

    loop_thread.close()
    loop_thread.close()

    assert loop_thread.loop.is_closed()


@pytest.mark.parametrize("scheduled", [True, False])
def test_an_interrupt_while_scheduling_still_cancels_and_waits(scheduled: bool) -> None:
    """Ctrl-C landing as run_on() hands over the coroutine: it is cancelled and its
    cleanup has ended when the interrupt is raised; if it never started, no wait."""
    loop_thread = LoopThread()
    events: list[str] = []
    started = threading.Event()

    async def body() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.05)
            events.append("cleaned up")

    class Interrupting:
        """The loop, whose call_soon_threadsafe is interrupted once."""

        interrupted = False

        def call_soon_threadsafe(self, callback: Any) -> None:
            if not self.interrupted:
                self.interrupted = True
                if scheduled:  # and running, as a body that printed "ready"
                    loop_thread.loop.call_soon_threadsafe(callback)
                    assert started.wait(5)
                raise KeyboardInterrupt
            loop_thread.loop.call_soon_threadsafe(callback)

        def create_task(self, coroutine: Any, **kwargs: Any) -> Any:
            return loop_thread.loop.create_task(coroutine, **kwargs)

    coroutine = body()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_on(Interrupting(), coroutine)  # type: ignore[arg-type]
        when_raised = list(events)
    finally:
        if not scheduled:
            coroutine.close()
        loop_thread.close()

    assert when_raised == (["cleaned up"] if scheduled else [])


class TestRunningLifespan:
    async def test_reports_the_running_lifespan_and_its_records(self) -> None:
        """running_lifespan() returns the running lifespan, with a record per resource, and None once it has stopped."""
        before = running_lifespan()

        async with lifespan():
            running = running_lifespan()
            assert running is not None
            of_container = running_lifespan(running.container)
            statuses = {path: record.status for path, record in running.records.items()}
            other = running_lifespan(object())
        after = running_lifespan()

        assert before is None
        assert of_container is running
        assert statuses == {
            "Container.httpx_client": "started",
            "Container.counter": "started",
        }
        assert other is None
        assert after is None


class TestPreflight:
    @pytest.mark.parametrize("check_id", sorted(BROKEN))
    async def test_refuses_what_the_server_refuses(self, check_id: str) -> None:
        """lifespan() and the lifespan test client refuse each startup problem with the server's message, before anything starts."""
        with broken(check_id):
            answer = await startup_answer()
            with pytest.raises(ConfigurationError) as by_lifespan:
                async with lifespan():
                    pass
            with pytest.raises(ConfigurationError) as by_client:
                async with LifespanAsyncClient():
                    pass

        assert answer["type"] == "lifespan.startup.failed"
        assert str(by_lifespan.value) == answer["message"]
        assert str(by_client.value) == answer["message"]
        assert RUNTIME.active is None
