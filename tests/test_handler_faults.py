"""Faults at the lifespan protocol: the server always hears how startup and shutdown ended."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dependency_injector import containers, providers
from django.test import override_settings

from lifespan_di.handler import LifespanASGIHandler
from tests.recorder import Recorder, cancelled_await
from tests.test_engine_faults import assert_each_stopped_once, wait_for_event
from tests.test_handler import Lifespan

SCOPE = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}


async def sloppy_start(**dependencies: Any) -> AsyncIterator[str]:
    await cancelled_await()
    yield "never"


class TestCancelledError:
    async def test_own_cancelled_error_at_startup_is_startup_failed(
        self, recorder: Recorder
    ) -> None:
        """A resource raising its own CancelledError gets startup.failed naming it, and the app returns normally: servers must not take it for "lifespan unsupported"."""

        class Sloppy(containers.DeclarativeContainer):
            fine = providers.Resource(recorder.async_resource("fine"))
            sloppy = providers.Resource(sloppy_start, fine=fine)

        lifespan = Lifespan(LifespanASGIHandler(Sloppy()), {})

        message = await lifespan.send("lifespan.startup")
        await lifespan.finished()

        assert message["type"] == "lifespan.startup.failed"
        assert message["message"].startswith(
            "Cannot start resource 'Sloppy.sloppy': it raised CancelledError()."
        )
        assert lifespan.communicator.future.exception() is None
        assert recorder.events == ["start:fine", "stop:fine"]

    async def test_own_cancelled_error_at_shutdown_is_shutdown_failed(
        self, recorder: Recorder
    ) -> None:
        """A teardown raising CancelledError gets shutdown.failed naming it, after every other resource stopped."""

        async def sloppy_stop(base: Any) -> AsyncIterator[str]:
            recorder.add("start:sloppy")
            yield "sloppy"
            recorder.add("stop:sloppy")
            await cancelled_await()

        class Sloppy(containers.DeclarativeContainer):
            base = providers.Resource(recorder.async_resource("base"))
            sloppy = providers.Resource(sloppy_stop, base=base)
            other = providers.Resource(recorder.sync_resource("other"))

        lifespan = Lifespan(LifespanASGIHandler(Sloppy()), {})
        await lifespan.send("lifespan.startup")

        message = await lifespan.send("lifespan.shutdown")
        await lifespan.finished()

        assert message["type"] == "lifespan.shutdown.failed"
        assert "'Sloppy.sloppy' (CancelledError())" in message["message"]
        assert_each_stopped_once(recorder)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
async def test_interrupt_from_a_teardown_is_reported_then_raised(
    recorder: Recorder, interrupt: type[BaseException]
) -> None:
    """The server gets shutdown.failed naming the resource; then the interrupt is raised out of the app, every teardown attempted."""

    class Interrupted(containers.DeclarativeContainer):
        base = providers.Resource(recorder.async_resource("base"))
        bad = providers.Resource(
            recorder.async_resource("bad", fail_stop=interrupt()), base=base
        )
        other = providers.Resource(recorder.sync_resource("other"))

    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message_type in ("lifespan.startup", "lifespan.shutdown"):
        inbox.put_nowait({"type": message_type})
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    app = LifespanASGIHandler(Interrupted())
    # Awaited in this task: raised out of a task, the interrupt would escape the loop.
    with pytest.raises(interrupt):
        async with asyncio.timeout(5):
            await app(dict(SCOPE), inbox.get, send)

    assert [message["type"] for message in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.failed",
    ]
    assert f"'Interrupted.bad' ({interrupt.__name__}())" in sent[1]["message"]
    assert_each_stopped_once(recorder)


@override_settings(
    LIFESPAN_DI={
        "CONTAINER": "tests.project.containers.Container",
        "STARTUP_TIMEOUT": 0.3,
        "SHUTDOWN_TIMEOUT": 0.2,
    }
)
async def test_startup_failed_is_sent_although_a_start_ignores_cancellation(
    recorder: Recorder,
) -> None:
    """A start that never honours cancellation cannot hold startup.failed back: it comes within STARTUP_TIMEOUT plus the grace."""
    release = asyncio.Event()

    async def stubborn_resource() -> AsyncIterator[str]:
        while not release.is_set():
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

    lifespan = Lifespan(LifespanASGIHandler(Stubborn()), {})
    began = time.perf_counter()
    message = await lifespan.send("lifespan.startup")
    elapsed = time.perf_counter() - began
    await lifespan.finished()

    assert elapsed < 2
    assert message["type"] == "lifespan.startup.failed"
    assert "'Stubborn.stubborn'" in message["message"]
    assert "may stay open until its start finishes" in message["message"]
    release.set()
    await wait_for_event(recorder, "stop:stubborn")
    assert_each_stopped_once(recorder)
