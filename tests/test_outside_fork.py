"""A forked child sees no lifespan running, never hands out the parent's objects, starts its own."""

from __future__ import annotations

import json
import multiprocessing
import os
import select
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from dependency_injector import containers, providers

import lifespan_di
from lifespan_di import Provide, inject, lifespan, running_lifespan
from lifespan_di.exceptions import LifespanNotRunningError
from tests.recorder import Recorder
from tests.test_outside_threads import LoopBound, use_pool, workers

__all__ = ["workers"]

WAIT_SECONDS = 30


@contextmanager
def forking_with_threads() -> Iterator[None]:
    """Python 3.12+ warns when a process with threads forks: the loop thread is one."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*fork", DeprecationWarning)
        yield


@inject
def read_pool(pool: LoopBound = Provide["pool"]) -> LoopBound:
    return pool


# --8<-- [start:child]
def child_report(recorder: Recorder, parent_pool: LoopBound) -> dict[str, Any]:
    """What a child sees, then does with its own lifespan."""
    report: dict[str, Any] = {"running": running_lifespan() is not None}
    try:
        read_pool()
    except LifespanNotRunningError:
        report["injected"] = "LifespanNotRunningError"
    else:
        report["injected"] = "the parent's pool"
    before = len(recorder.events)
    with lifespan() as state:
        report["own_pool"] = state.pool is not parent_pool
        report["own_loop"] = state.pool.loop is not parent_pool.loop
        report["call"] = use_pool()
    report["events"] = recorder.events[before:]
    report["parent_pool_closed_by_child"] = parent_pool.closed
    return report


# --8<-- [end:child]


class TestFork:
    def test_os_fork_after_startup(
        self, workers: containers.Container, recorder: Recorder
    ) -> None:
        """A child forked inside a running block sees no lifespan, starts and stops its own, and leaves the parent's open."""
        read, write = os.pipe()

        with lifespan() as state:
            with forking_with_threads():
                pid = os.fork()
            if pid == 0:  # the child: report, and never return into pytest
                code = 1
                try:
                    os.write(
                        write, json.dumps(child_report(recorder, state.pool)).encode()
                    )
                    code = 0
                finally:
                    os._exit(code)
            os.close(write)
            ready, _, _ = select.select([read], [], [], WAIT_SECONDS)
            raw = os.read(read, 65536) if ready else b"{}"
            _, status = waitpid_bounded(pid)
            parent_call = lifespan_di.run(state.pool.call())
        os.close(read)

        assert json.loads(raw) == {
            "running": False,
            "injected": "LifespanNotRunningError",
            "own_pool": True,
            "own_loop": True,
            "call": "ok",
            "events": ["start:pool", "stop:pool"],
            "parent_pool_closed_by_child": False,
        }
        assert os.waitstatus_to_exitcode(status) == 0
        assert parent_call == "ok"
        assert recorder.events == ["start:pool", "stop:pool"]

    def test_a_child_may_create_instances_of_the_running_class(
        self, recorder: Recorder
    ) -> None:
        """The class's providers stop answering from the parent's instance in a child: it can create a new instance and start it."""

        class Shop(containers.DeclarativeContainer):
            pool = providers.Resource(recorder.sync_resource("pool"))

        read, write = os.pipe()
        with lifespan(Shop()):
            with forking_with_threads():
                pid = os.fork()
            if pid == 0:  # the child: report, and never return into pytest
                code = 1
                try:
                    with lifespan(Shop()) as state:
                        same = Shop.pool() is state.pool
                    os.write(write, f"ok {same}".encode())
                    code = 0
                except BaseException as error:
                    os.write(write, repr(error).encode())
                finally:
                    os._exit(code)
            os.close(write)
            ready, _, _ = select.select([read], [], [], WAIT_SECONDS)
            raw = os.read(read, 65536) if ready else b"no report"
            waitpid_bounded(pid)
        os.close(read)

        assert raw.decode() == "ok True"

    def test_multiprocessing_fork_context(
        self, workers: containers.Container, recorder: Recorder
    ) -> None:
        """A multiprocessing child (fork start method) of a running lifespan starts its own."""
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)

        with lifespan() as state:
            process = context.Process(
                target=lambda: sender.send(child_report(recorder, state.pool))
            )
            with forking_with_threads():
                process.start()
            got = receiver.poll(WAIT_SECONDS)
            report = receiver.recv() if got else {}
            process.join(WAIT_SECONDS)
            if process.is_alive():
                process.kill()
                process.join(WAIT_SECONDS)

        assert report["running"] is False
        assert report["injected"] == "LifespanNotRunningError"
        assert (report["own_pool"], report["own_loop"], report["call"]) == (
            True,
            True,
            "ok",
        )
        assert report["events"] == ["start:pool", "stop:pool"]
        assert process.exitcode == 0
        assert recorder.events == ["start:pool", "stop:pool"]


def waitpid_bounded(pid: int) -> tuple[int, int]:
    """os.waitpid, but kill the child if it has not ended within WAIT_SECONDS."""
    for _ in range(WAIT_SECONDS * 20):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return done, status
        select.select([], [], [], 0.05)
    os.kill(pid, 9)
    pytest.fail("the child did not exit")
    return os.waitpid(pid, 0)
