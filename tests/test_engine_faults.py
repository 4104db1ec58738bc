"""Faults the engine must survive: BaseExceptions, slow cancellation, blocking starts.

Each test checks with the recorder that every resource that started was stopped
exactly once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from dependency_injector import containers, providers

from lifespan_di import container_lifespan
from lifespan_di.core.lifespan import RUNTIME
from lifespan_di.exceptions import ShutdownError, StartupError
from tests.recorder import Recorder, cancelled_await

INTERRUPTS = [KeyboardInterrupt, SystemExit]


async def wait_for_event(recorder: Recorder, event: str) -> None:
    async with asyncio.timeout(5):
        # Polled: worker threads record too, and asyncio.Event is not thread-safe.
        while event not in recorder.events:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def assert_each_stopped_once(recorder: Recorder) -> None:
    assert sorted(recorder.stopped) == sorted(recorder.started)
    assert len(set(recorder.stopped)) == len(recorder.stopped)


class TestTeardownBaseExceptions:
    async def test_cancelled_error_from_a_teardown_is_its_failure(
        self, recorder: Recorder
    ) -> None:
        """A teardown raising its own CancelledError fails alone; its dependency and an independent resource still stop."""

        async def sloppy_resource(base: Any) -> AsyncIterator[str]:
            yield "sloppy"
            recorder.add("stop:sloppy")
            await cancelled_await()

        class Sloppy(containers.DeclarativeContainer):
            base = providers.Resource(recorder.async_resource("base"))
            sloppy = providers.Resource(sloppy_resource, base=base)
            other = providers.Resource(recorder.async_resource("other", stop_delay=0.1))

        lifespan = container_lifespan(Sloppy())
        await lifespan.startup()
        recorder.add("start:sloppy")

        with pytest.raises(ShutdownError) as caught:
            await lifespan.shutdown()

        assert caught.value.resources == ("Sloppy.sloppy",)
        assert "'Sloppy.sloppy' (CancelledError())" in caught.value.message
        assert recorder.stopped.index("sloppy") < recorder.stopped.index("base")
        assert_each_stopped_once(recorder)
        assert RUNTIME.active is None

    @pytest.mark.parametrize("interrupt", INTERRUPTS)
    @pytest.mark.parametrize("form", ["async", "sync"])
    async def test_interrupt_from_a_teardown_is_raised_after_every_teardown(
        self, recorder: Recorder, interrupt: type[BaseException], form: str
    ) -> None:
        """KeyboardInterrupt / SystemExit from a teardown is re-raised only after every other teardown ran, with the ShutdownError as its cause."""
        make = recorder.async_resource if form == "async" else recorder.sync_resource

        class Interrupted(containers.DeclarativeContainer):
            base = providers.Resource(recorder.async_resource("base"))
            bad = providers.Resource(make("bad", fail_stop=interrupt()), base=base)
            other = providers.Resource(recorder.sync_resource("other", stop_delay=0.1))
            last = providers.Resource(recorder.async_resource("last"), other=other)

        lifespan = container_lifespan(Interrupted())
        await lifespan.startup()

        with pytest.raises(interrupt) as caught:
            await lifespan.shutdown()

        cause = caught.value.__cause__
        assert isinstance(cause, ShutdownError)
        assert cause.resources == ("Interrupted.bad",)
        assert f"'Interrupted.bad' ({interrupt.__name__}())" in cause.message
        assert recorder.stopped.index("bad") < recorder.stopped.index("base")
        assert recorder.stopped.index("last") < recorder.stopped.index("other")
        assert_each_stopped_once(recorder)
        assert RUNTIME.active is None

    async def test_cancelling_the_shutdown_still_cancels(
        self, recorder: Recorder
    ) -> None:
        """A real cancellation of the shutdown propagates: it is not a teardown failure."""

        class Slow(containers.DeclarativeContainer):
            slow = providers.Resource(recorder.async_resource("slow", stop_delay=30))

        lifespan = container_lifespan(Slow())
        await lifespan.startup()
        task = asyncio.create_task(lifespan.shutdown())
        await asyncio.sleep(0.1)

        task.cancel()

        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert RUNTIME.active is None

    async def test_cancelled_error_during_rollback_is_reported(
        self, recorder: Recorder
    ) -> None:
        """A teardown raising CancelledError while a failed startup rolls back is named in the StartupError."""

        async def sloppy_resource() -> AsyncIterator[str]:
            recorder.add("start:sloppy")
            yield "sloppy"
            recorder.add("stop:sloppy")
            await cancelled_await()

        class Both(containers.DeclarativeContainer):
            sloppy = providers.Resource(sloppy_resource)
            broken = providers.Resource(
                recorder.async_resource("broken", fail_start=OSError("down")),
                sloppy=sloppy,
            )

        with pytest.raises(StartupError) as caught:
            await container_lifespan(Both()).startup()

        assert "Shutting down 'Both.sloppy' failed too: CancelledError()" in str(
            caught.value
        )
        assert_each_stopped_once(recorder)


class TestStartupFaults:
    async def test_cancelled_error_from_a_start_is_a_failure(
        self, recorder: Recorder
    ) -> None:
        """A resource raising its own CancelledError while starting fails the startup, naming it; the others roll back."""

        async def sloppy_resource(first: Any) -> AsyncIterator[str]:
            await cancelled_await()
            yield "never"

        class Sloppy(containers.DeclarativeContainer):
            first = providers.Resource(recorder.async_resource("first"))
            sloppy = providers.Resource(sloppy_resource, first=first)

        with pytest.raises(StartupError) as caught:
            await container_lifespan(Sloppy()).startup()

        assert caught.value.resource == "Sloppy.sloppy"
        assert "it raised CancelledError()" in str(caught.value)
        assert recorder.events == ["start:first", "stop:first"]
        assert RUNTIME.active is None

    @pytest.mark.parametrize("interrupt", INTERRUPTS)
    async def test_interrupt_from_a_start_is_raised_after_the_rollback(
        self, recorder: Recorder, interrupt: type[BaseException]
    ) -> None:
        """KeyboardInterrupt / SystemExit from a sync start rolls back first, then is raised with the StartupError as its cause."""

        class Interrupted(containers.DeclarativeContainer):
            first = providers.Resource(recorder.async_resource("first"))
            bad = providers.Resource(
                recorder.sync_resource("bad", delay=0.05, fail_start=interrupt()),
                first=first,
            )

        with pytest.raises(interrupt) as caught:
            await container_lifespan(Interrupted()).startup()

        assert isinstance(caught.value.__cause__, StartupError)
        assert caught.value.__cause__.resource == "Interrupted.bad"
        assert recorder.events == ["start:first", "stop:first"]

    async def test_rollback_is_bounded_when_a_start_ignores_cancellation(
        self, recorder: Recorder
    ) -> None:
        """A start slow to honour cancellation gets a bounded grace, is reported as possibly open, and is closed when it finishes."""
        release = asyncio.Event()

        async def stubborn_resource() -> AsyncIterator[str]:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                await release.wait()
            recorder.add("start:stubborn")
            yield "stubborn"
            recorder.add("stop:stubborn")

        class Stubborn(containers.DeclarativeContainer):
            fine = providers.Resource(recorder.async_resource("fine"))
            stubborn = providers.Resource(stubborn_resource)

        lifespan = container_lifespan(
            Stubborn(), startup_timeout=0.3, shutdown_timeout=0.2
        )
        began = time.perf_counter()
        with pytest.raises(StartupError) as caught:
            await lifespan.startup()
        elapsed = time.perf_counter() - began

        assert elapsed < 2
        assert caught.value.resource == "Stubborn.stubborn"
        assert (
            "'Stubborn.stubborn' was still starting 0.2 s after it was cancelled"
            in str(caught.value)
        )
        assert recorder.events == ["start:fine", "stop:fine"]
        release.set()
        await wait_for_event(recorder, "stop:stubborn")
        assert_each_stopped_once(recorder)

    async def test_sync_start_finishing_after_the_grace_is_closed_in_its_thread(
        self, recorder: Recorder
    ) -> None:
        """A sync init still running in its thread when the startup gives up is shut down when that thread finishes, exactly once."""
        threads: list[str] = []

        @contextmanager
        def blocking_resource() -> Iterator[str]:
            time.sleep(0.6)
            recorder.add("start:blocking")
            yield "blocking"
            threads.append(threading.current_thread().name)
            recorder.add("stop:blocking")

        class Blocking(containers.DeclarativeContainer):
            blocking = providers.Resource(blocking_resource)

        with pytest.raises(StartupError) as caught:
            await container_lifespan(
                Blocking(), startup_timeout=0.1, shutdown_timeout=0.1
            ).startup()

        assert "'Blocking.blocking' was still starting" in str(caught.value)
        assert recorder.events == []
        await wait_for_event(recorder, "stop:blocking")
        await asyncio.sleep(0.1)
        assert recorder.events == ["start:blocking", "stop:blocking"]
        assert threads != [threading.main_thread().name]

    async def test_timeout_blames_the_start_that_blocked_the_loop(
        self, recorder: Recorder
    ) -> None:
        """A coroutine that blocks the event loop past the deadline is named, not the resource that could not run meanwhile."""

        async def blocker_resource() -> AsyncIterator[str]:
            time.sleep(0.5)  # noqa: ASYNC251 - the fault under test
            yield "blocker"

        class Blocked(containers.DeclarativeContainer):
            innocent = providers.Resource(
                recorder.async_resource("innocent", delay=0.2)
            )
            blocker = providers.Resource(blocker_resource)

        with pytest.raises(StartupError) as caught:
            await container_lifespan(Blocked(), startup_timeout=0.3).startup()

        message = str(caught.value)
        assert caught.value.resource == "Blocked.blocker"
        assert message.startswith("Cannot start resource 'Blocked.blocker'")
        assert "kept the event loop busy" in message
        assert "'Blocked.innocent'" not in message.split(":")[0]
        assert_each_stopped_once(recorder)


class TestSyncFormsOffTheLoop:
    async def test_plain_functions_start_in_threads_without_blocking_the_loop(
        self, recorder: Recorder
    ) -> None:
        """Two plain functions that block 0.4 s start concurrently in threads; the loop keeps running meanwhile."""
        threads: list[str] = []

        def connect(name: str) -> str:
            threads.append(threading.current_thread().name)
            time.sleep(0.4)
            return name

        class Plain(containers.DeclarativeContainer):
            one = providers.Resource(connect, "one")
            two = providers.Resource(connect, "two")

        gaps: list[float] = []

        async def heartbeat() -> None:
            loop = asyncio.get_running_loop()
            last = loop.time()
            while True:
                await asyncio.sleep(0.01)
                now = loop.time()
                gaps.append(now - last)
                last = now

        beating = asyncio.create_task(heartbeat())
        began = time.perf_counter()
        try:
            async with container_lifespan(Plain()) as state:
                elapsed = time.perf_counter() - began
        finally:
            beating.cancel()

        assert (state["one"], state["two"]) == ("one", "two")
        assert elapsed < 0.75
        assert max(gaps) < 0.2
        assert threading.main_thread().name not in threads

    async def test_function_returning_a_sync_context_manager_opens_and_closes_in_a_thread(
        self,
    ) -> None:
        """A plain function returning a context manager: both ``__enter__`` and ``__exit__`` run in a worker thread."""
        seen: list[tuple[str, str]] = []

        class Connection:
            def __enter__(self) -> Connection:
                seen.append(("enter", threading.current_thread().name))
                return self

            def __exit__(self, *exc_info: object) -> None:
                seen.append(("exit", threading.current_thread().name))

        def connect() -> Connection:
            return Connection()

        class Managed(containers.DeclarativeContainer):
            connection = providers.Resource(connect)

        async with container_lifespan(Managed()) as state:
            assert isinstance(state["connection"], Connection)

        assert [step for step, _ in seen] == ["enter", "exit"]
        assert threading.main_thread().name not in {name for _, name in seen}

    async def test_function_returning_a_coroutine_or_async_manager_opens_on_the_loop(
        self,
    ) -> None:
        """A plain function whose result needs the loop (a coroutine, an async context manager) still starts and stops, on the loop."""
        loop_thread = threading.current_thread().name
        seen: list[tuple[str, str]] = []

        async def fetch(value: str) -> str:
            seen.append(("fetch", threading.current_thread().name))
            return value

        class Client:
            async def __aenter__(self) -> Client:
                seen.append(("aenter", threading.current_thread().name))
                return self

            async def __aexit__(self, *exc_info: object) -> None:
                seen.append(("aexit", threading.current_thread().name))

        def fetch_later(value: str) -> Any:
            return fetch(value)

        def make_client(base: str) -> Client:
            return Client()

        class Mixed(containers.DeclarativeContainer):
            base = providers.Resource(fetch_later, "config")
            client = providers.Resource(make_client, base=base)

        container = Mixed()
        async with container_lifespan(container) as state:
            assert state["base"] == "config"
            assert isinstance(state["client"], Client)
            assert container.base() == "config"

        assert seen == [
            ("fetch", loop_thread),
            ("aenter", loop_thread),
            ("aexit", loop_thread),
        ]
        # The provider is as declared again: a second lifespan starts it the same way.
        async with container_lifespan(container) as state:
            assert state["base"] == "config"
