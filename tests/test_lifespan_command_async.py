"""LifespanCommand: an async def body run on the resources' loop, closed on return, raise and Ctrl-C."""

from __future__ import annotations

import asyncio
import io
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

import lifespan_di
from lifespan_di import Provide, inject, with_lifespan
from lifespan_di.core.lifespan import RUNTIME
from lifespan_di.exceptions import ConfigurationError
from lifespan_di.management import LifespanCommand
from tests.project.containers import Counter

ROOT = Path(__file__).resolve().parent.parent
WAIT_SECONDS = 30


class Recorded(LifespanCommand):
    """Records the counter it was given, the loop it ran on, and the resources' loop."""

    seen: dict[str, Any]

    @inject
    async def ahandle(
        self, *args: Any, counter: Counter = Provide["counter"], **options: Any
    ) -> str:
        active = RUNTIME.active
        assert active is not None
        Recorded.seen = {
            "counter": counter,
            "loop": asyncio.get_running_loop(),
            "resources_loop": RUNTIME.loop_of(active),
        }
        if options.get("fail"):
            raise CommandError("failed on purpose")
        return "done"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--fail", action="store_true")


# --8<-- [start:sync_command]
@inject
async def greeting(client: httpx.AsyncClient = Provide["httpx_client"]) -> str:
    return "open" if not client.is_closed else "closed"


class SyncCommand(BaseCommand):
    @with_lifespan
    def handle(self, *args: Any, **options: Any) -> str:
        # Plain values for sync code; lifespan_di.run() for coroutines.
        return f"client {lifespan_di.run(greeting())}, counter {read_counter().value}"


# --8<-- [end:sync_command]


@inject
def read_counter(counter: Counter = Provide["counter"]) -> Counter:
    return counter


class TestInProcess:
    def test_sync_command_with_lifespan(self) -> None:
        """A sync command's @with_lifespan handle() gets plain values and runs coroutines with run()."""
        out = io.StringIO()

        call_command(SyncCommand(), stdout=out)

        assert out.getvalue() == "client open, counter 0\n"
        assert RUNTIME.active is None

    def test_runs_on_the_resources_loop_and_closes_them(self) -> None:
        """ahandle() gets injected resources on the loop that owns them; they close when it returns."""
        out = io.StringIO()

        call_command(Recorded(), stdout=out)

        seen = Recorded.seen
        assert out.getvalue() == "done\n"
        assert seen["loop"] is seen["resources_loop"]
        assert seen["counter"].closed
        assert RUNTIME.active is None

    def test_closes_them_when_it_raises(self) -> None:
        """A CommandError out of ahandle() propagates after the resources were shut down."""
        with pytest.raises(CommandError, match="on purpose"):
            call_command(Recorded(), "--fail")

        assert Recorded.seen["counter"].closed
        assert RUNTIME.active is None

    def test_async_handle_is_refused_at_class_definition(self) -> None:
        """A subclass with an async def handle() fails when it is defined, naming ahandle()."""
        with pytest.raises(ConfigurationError, match=r"ahandle\(self"):

            class Broken(LifespanCommand):
                async def handle(self, *args: Any, **options: Any) -> None:
                    pass

    def test_sync_ahandle_is_refused_at_class_definition(self) -> None:
        """A subclass with a sync ahandle() fails when it is defined."""
        with pytest.raises(ConfigurationError, match="must be `async def`"):

            class Broken(LifespanCommand):
                def ahandle(self, *args: Any, **options: Any) -> None:  # type: ignore[override]
                    pass

    def test_with_lifespan_on_async_handle_fails_in_django(self) -> None:
        """What the issue reported: Django cannot run @with_lifespan async def handle(), hence LifespanCommand."""

        class Plain(BaseCommand):
            @with_lifespan
            async def handle(self, *args: Any, **options: Any) -> None:
                pass

        with (
            pytest.warns(RuntimeWarning, match="never awaited"),
            pytest.raises(AttributeError, match="endswith"),
        ):
            call_command(Plain())


def test_ctrl_c_cancels_the_body_then_closes_the_resources(tmp_path: Path) -> None:
    """SIGINT to `python -m django <command>` cancels ahandle() while the resources are open, then shuts them down."""
    events = tmp_path / "events.txt"
    env = {
        **os.environ,
        "LIFESPAN_DI_TEST_RECORD": str(events),
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.commands_app.settings",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "interruptible"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], WAIT_SECONDS)
        line = process.stdout.readline() if ready else b""
        process.send_signal(signal.SIGINT)
        process.wait(WAIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(WAIT_SECONDS)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    assert line == b"ready\n"
    assert process.returncode != 0
    recorded = events.read_text().splitlines()
    assert sorted(recorded[:2]) == ["start:counter", "start:httpx_client"]
    assert recorded[2] == "cancelled:counter closed=False"
    assert sorted(recorded[3:]) == ["stop:counter", "stop:httpx_client"]
