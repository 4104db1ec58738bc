"""lifespan() and with_lifespan from many threads and nested blocks: one lifespan, its loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import pytest
from dependency_injector import containers, providers

import lifespan_di
from lifespan_di import Provide, inject, lifespan, with_lifespan
from lifespan_di.core.shared import REGISTRY
from tests.recorder import Recorder


class LoopBound:
    """Refuses to be used on any loop but the one it was created on, as redis.asyncio does."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.closed = False

    async def call(self) -> str:
        if asyncio.get_running_loop() is not self.loop:
            raise RuntimeError("attached to a different loop")
        if self.closed:
            raise RuntimeError("used after close")
        await asyncio.sleep(0.001)
        return "ok"


def loop_bound_pool(recorder: Recorder) -> Any:
    """A resource opening a ``LoopBound``, recording its start and stop."""

    @asynccontextmanager
    async def open_pool() -> AsyncIterator[LoopBound]:
        recorder.add("start:pool")
        resource = LoopBound()
        yield resource
        resource.closed = True
        recorder.add("stop:pool")

    return open_pool


def loop_bound_container(recorder: Recorder) -> containers.Container:
    class Workers(containers.DeclarativeContainer):
        pool = providers.Resource(loop_bound_pool(recorder))

    return Workers()


@pytest.fixture
def workers(recorder: Recorder, settings: object) -> containers.Container:
    container = loop_bound_container(recorder)
    settings.LIFESPAN_DI = {"CONTAINER": container}  # type: ignore[attr-defined]
    settings.ROOT_URLCONF = "tests.project.empty_urls"  # type: ignore[attr-defined]
    return container


# --8<-- [start:run]
@inject
def use_pool(pool: LoopBound = Provide["pool"]) -> str:
    """Sync code awaiting a loop-bound resource: on the loop that owns it."""
    return lifespan_di.run(pool.call())


# --8<-- [end:run]


class TestThreads:
    def test_eight_threads_share_one_lifespan(
        self, workers: containers.Container, recorder: Recorder
    ) -> None:
        """8 threads running 40 @with_lifespan tasks share one lifespan: 40 ok, 1 start, 1 stop."""

        # --8<-- [start:threads]
        @with_lifespan
        def task(number: int) -> str:
            return use_pool()

        # --8<-- [end:threads]
        # Concurrent blocks: every task is queued before any runs. (Queued one by
        # one, the pool may finish each task before the next arrives: then no
        # block runs in between, and the next one starts the resources anew.)
        queued = threading.Event()

        def when_all_queued(number: int) -> str:
            assert queued.wait(10)
            return task(number)

        with ThreadPoolExecutor(8) as pool:
            tasks = [pool.submit(when_all_queued, number) for number in range(40)]
            queued.set()
            results = [done.result(timeout=60) for done in tasks]

        assert results == ["ok"] * 40
        assert recorder.events == ["start:pool", "stop:pool"]

    def test_a_block_entered_while_it_stops_gets_a_new_lifespan(
        self, workers: containers.Container, recorder: Recorder
    ) -> None:
        """A block entered after the last one left starts the resources anew."""
        with lifespan() as first:
            pool = first.pool
        with lifespan() as second:
            again = second.pool

        assert pool.closed
        assert again is not pool
        assert recorder.events == ["start:pool", "stop:pool"] * 2

    def test_a_block_entered_during_the_shutdown_waits_for_it(
        self, recorder: Recorder, settings: Any
    ) -> None:
        """A block entered while the last one shuts the resources down waits, then starts them anew."""

        class Slow(containers.DeclarativeContainer):
            pool = providers.Resource(recorder.async_resource("pool", stop_delay=0.3))

        settings.LIFESPAN_DI = {"CONTAINER": Slow()}
        settings.ROOT_URLCONF = "tests.project.empty_urls"
        second: list[bool] = []

        def enter_during_shutdown() -> None:
            while "stop:pool" not in recorder.events and not stopping():
                time.sleep(0.005)
            with lifespan() as state:
                second.append(state.pool.closed)

        thread = threading.Thread(target=enter_during_shutdown)
        with lifespan():
            thread.start()
        thread.join(10)

        assert second == [False]
        assert recorder.events == ["start:pool", "stop:pool"] * 2

    def test_the_starting_thread_leaving_first_keeps_it_open(
        self, workers: containers.Container, recorder: Recorder
    ) -> None:
        """The block that started the resources may leave first: they close when the last block leaves."""
        joined, left = threading.Event(), threading.Event()
        seen: list[str] = []

        def late_user() -> None:
            with lifespan():
                joined.set()
                assert left.wait(10)
                seen.append(use_pool())

        with lifespan():
            thread = threading.Thread(target=late_user)
            thread.start()
            assert joined.wait(10)
        left.set()
        thread.join(10)

        assert seen == ["ok"]
        assert recorder.events == ["start:pool", "stop:pool"]


class TestRun:
    def test_thirty_concurrent_calls_from_a_nested_block(
        self, workers: containers.Container
    ) -> None:
        """30 concurrent loop-bound calls through a nested block's run() all run on the resources' loop."""
        nested = lifespan()

        with lifespan() as state, nested, ThreadPoolExecutor(30) as pool:
            calls = [pool.submit(nested.run, state.pool.call()) for _ in range(30)]
            results = [call.result(timeout=60) for call in calls]

        assert results == ["ok"] * 30

    def test_run_in_a_with_lifespan_function(
        self, workers: containers.Container
    ) -> None:
        """A @with_lifespan sync function runs coroutines on the resources' loop with lifespan_di.run()."""

        @with_lifespan
        def handle() -> list[str]:
            with ThreadPoolExecutor(30) as pool:
                return list(pool.map(lambda _: use_pool(), range(30), timeout=60))

        assert handle() == ["ok"] * 30

    async def test_run_on_the_loop_itself_is_refused(
        self, workers: containers.Container
    ) -> None:
        """run() called on the loop that owns the resources raises instead of waiting forever."""
        async with lifespan():
            with pytest.raises(RuntimeError, match="Await the coroutine"):
                use_pool()

    async def test_an_async_block_on_another_loop_is_refused(
        self, workers: containers.Container
    ) -> None:
        """async with lifespan() on a loop other than the resources' raises a clear error."""

        async def other_loop_block() -> None:
            async with lifespan():
                pass

        async with lifespan():
            with pytest.raises(RuntimeError, match="another event loop"):
                await asyncio.to_thread(asyncio.run, other_loop_block())

    async def test_tasks_on_one_loop_share_it(
        self, workers: containers.Container, recorder: Recorder
    ) -> None:
        """Concurrent @with_lifespan async tasks on one loop start the resources once and close them once."""

        @with_lifespan
        @inject
        async def task(pool: LoopBound = Provide["pool"]) -> str:
            await asyncio.sleep(0.01)
            return await pool.call()

        results = await asyncio.gather(*(task() for _ in range(20)))

        assert results == ["ok"] * 20
        assert recorder.events == ["start:pool", "stop:pool"]


def stopping() -> bool:
    """Whether a shared lifespan is shutting down."""
    return any(shared.stopping for shared in list(REGISTRY.entries.values()))


class TestRequestResourcesFromSyncCode:
    def test_an_async_request_resource_lives_on_the_lifespans_loop(
        self, recorder: Recorder
    ) -> None:
        """In a sync block, an async request resource used from sync code opens and
        closes on the resources' loop, and lifespan_di.run() sees the same instance."""

        @asynccontextmanager
        async def open_unit(pool: LoopBound) -> AsyncIterator[object]:
            recorder.add(f"open:{asyncio.get_running_loop() is pool.loop}")
            yield object()
            recorder.add(f"close:{asyncio.get_running_loop() is pool.loop}")

        class Units(containers.DeclarativeContainer):
            pool = providers.Resource(loop_bound_pool(recorder))
            unit = lifespan_di.RequestResource(open_unit, pool=pool)

        container = Units()

        with lifespan(container), lifespan_di.request_scope():
            unit = container.unit()
            same = lifespan_di.run(container.unit.async_())

        assert same is unit
        assert recorder.events == ["start:pool", "open:True", "close:True", "stop:pool"]
