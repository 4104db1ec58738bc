"""REQUEST_THREADS: long-lived request threads, one per in-flight request.

Requests go through ``LifespanASGIHandler`` with ``ApplicationCommunicator``; the
views of tests/project/thread_views.py record which thread runs each part of a
request. The PostgreSQL end-to-end test is in tests/servers/test_request_threads_pg.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.core.checks import run_checks
from django.db import connections
from django.test import override_settings

from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.request_threads import RequestThreads
from tests.project import thread_views
from tests.test_handler import TIMEOUT, Lifespan
from tests.test_request_scope import http_scope
from tests.test_request_scope_faults import saved

POOLED = "lifespan_di-request-"
"""The name every pooled thread starts with."""


def with_threads(size: object, **extra: Any) -> override_settings:
    return override_settings(
        LIFESPAN_DI={**settings.LIFESPAN_DI, "REQUEST_THREADS": size}, **extra
    )


@pytest.fixture(autouse=True)
def fresh_events() -> Iterator[None]:
    thread_views.EVENTS.clear()
    thread_views.RAW_CONNECTIONS.clear()
    yield
    thread_views.EVENTS.clear()
    thread_views.RAW_CONNECTIONS.clear()


@pytest.fixture
async def new_handler() -> AsyncIterator[Callable[[], LifespanASGIHandler]]:
    """Makes handlers whose threads end after the test, even one that failed.

    Else a failed test's threads outlive it and fail the next test's checks too.
    """
    made: list[LifespanASGIHandler] = []

    def make() -> LifespanASGIHandler:
        made.append(LifespanASGIHandler())
        return made[-1]

    yield make
    for handler in made:
        if handler.request_threads is not None:
            await handler.request_threads.aclose()


@pytest.fixture
async def pooled(
    new_handler: Callable[[], LifespanASGIHandler],
) -> AsyncIterator[LifespanASGIHandler]:
    """A handler lending each request one of 8 threads, with a sync middleware.

    Its threads are ended, their connections closed, as a lifespan shutdown does.
    """
    middleware = [*settings.MIDDLEWARE, "tests.project.thread_views.middleware"]
    with with_threads(8, MIDDLEWARE=middleware):
        yield new_handler()


async def fetch(app: Any, url: str) -> tuple[int, dict[str, Any]]:
    """Send ``GET url`` (path and query) through ``app``, as a server would."""
    path, _, query = url.partition("?")
    communicator = ApplicationCommunicator(app, http_scope(path, query.encode()))
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(TIMEOUT)
    body = b""
    while True:
        message = await communicator.receive_output(TIMEOUT)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(TIMEOUT)
    return start["status"], json.loads(body) if start["status"] == 200 else {}


async def get(app: Any, url: str) -> dict[str, Any]:
    status, body = await fetch(app, url)
    assert status == 200, body
    return body


def threads_by_request() -> dict[str, set[int]]:
    found: dict[str, set[int]] = defaultdict(set)
    for request_id, _, thread in thread_views.EVENTS:
        found[request_id].add(thread)
    return found


class TestOneThreadPerRequest:
    @pytest.mark.parametrize("view", ["sync", "async"])
    async def test_all_thread_sensitive_work_of_a_request_runs_on_one_thread(
        self, pooled: LifespanASGIHandler, view: str
    ) -> None:
        """request_started, sync middleware, the sync view and close() share a thread."""
        await asyncio.gather(
            *(get(pooled, f"/threads/{view}/?id={n}") for n in range(10))
        )

        parts = {part for _, part, _ in thread_views.EVENTS}
        expected = {"started", "middleware", "close"} | (
            {"view"} if view == "sync" else set()
        )
        assert parts == expected
        assert all(len(threads) == 1 for threads in threads_by_request().values())
        assert len(threads_by_request()) == 10

    async def test_sequential_requests_reuse_one_pooled_thread(
        self, pooled: LifespanASGIHandler
    ) -> None:
        """One request after another: every one runs on the same long-lived thread."""
        answers = [await get(pooled, f"/threads/sync/?id={n}") for n in range(5)]

        assert len({answer["thread"] for answer in answers}) == 1
        assert answers[0]["name"].startswith(POOLED)

    async def test_concurrent_requests_never_share_a_thread(
        self, pooled: LifespanASGIHandler
    ) -> None:
        """64 requests in flight at once: 64 threads, 8 of them pooled, never shared."""
        paths = [f"/threads/sync/?id={n}&sleep=0.3" for n in range(64)]

        answers = await asyncio.gather(*(get(pooled, path) for path in paths))
        again = await asyncio.gather(*(get(pooled, path) for path in paths[:8]))

        assert len({answer["thread"] for answer in answers}) == 64
        pooled_threads = {a["thread"] for a in answers if a["name"].startswith(POOLED)}
        assert len(pooled_threads) == 8
        assert {answer["thread"] for answer in again} == pooled_threads

    async def test_without_the_setting_each_request_gets_a_new_thread(self) -> None:
        """REQUEST_THREADS unset: Django's behaviour, a new thread for every request."""
        handler = LifespanASGIHandler()

        answers = [await get(handler, f"/threads/sync/?id={n}") for n in range(3)]

        assert handler.request_threads is None
        assert not any(answer["name"].startswith(POOLED) for answer in answers)
        # Names, not idents: a new thread may get the ident of one that has ended.
        assert len({answer["name"] for answer in answers}) == 3


@pytest.fixture
def persistent_db(sqlite_db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's SQLite database, with persistent connections (CONN_MAX_AGE = 60)."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 60)


@pytest.mark.usefixtures("persistent_db")
class TestDatabaseConnections:
    async def test_a_pooled_thread_keeps_its_connection_between_requests(
        self, pooled: LifespanASGIHandler
    ) -> None:
        """With CONN_MAX_AGE > 0, sequential requests reuse one database connection."""
        answers = [await get(pooled, f"/threads/connection/?id={n}") for n in range(3)]

        assert [answer["was_open"] for answer in answers] == [False, True, True]
        assert len({answer["id"] for answer in answers}) == 1

    async def test_without_the_setting_every_request_connects_anew(self) -> None:
        """REQUEST_THREADS unset: each request's new thread opens a new connection."""
        handler = LifespanASGIHandler()

        answers = [
            await get(handler, f"/threads/connection/?id={n}&close=1") for n in range(3)
        ]

        assert [answer["was_open"] for answer in answers] == [False, False, False]

    async def test_an_overflow_request_closes_its_connection(
        self,
        new_handler: Callable[[], LifespanASGIHandler],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A request past REQUEST_THREADS closes its thread's connection: none leaks.

        The lifespan shutdown reports how many overflowed, to size the setting.
        """
        with with_threads(1):
            handler = new_handler()
            paths = [f"/threads/connection/?id={n}&sleep=0.2" for n in range(3)]
            answers = await asyncio.gather(*(get(handler, path) for path in paths))
            raw = {id(used): used for used in thread_views.RAW_CONNECTIONS}

            overflow = [
                a for a in answers if a["name"].startswith("lifespan_di-overflow")
            ]
            pooled = [a for a in answers if a["name"].startswith(POOLED)]
            assert (len(overflow), len(pooled)) == (2, 1)
            # Closed by the thread itself once the request has ended; probed only
            # after that thread has exited: sqlite3 crashes when one thread uses a
            # connection while another closes it.
            ended = {(a["thread"], a["name"]) for a in overflow}
            await wait_until(lambda: not ended & alive_threads())
            assert all(is_closed(raw[a["id"]]) for a in overflow)
            assert not is_closed(raw[pooled[0]["id"]])
            threads = handler.request_threads
            assert threads is not None
            with caplog.at_level(logging.INFO, logger="lifespan_di"):
                await threads.aclose()

        assert is_closed(raw[pooled[0]["id"]])
        assert (threads.requests, threads.overflowed, threads.peak) == (3, 2, 3)
        assert caplog.messages == [
            "REQUEST_THREADS: 2 of 3 requests found all 1 request threads lent and "
            "ran on a new thread each; at most 3 held one at once."
        ]

    async def test_close_old_connections_runs_on_the_thread_holding_it(
        self, pooled: LifespanASGIHandler, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With CONN_MAX_AGE = 0, Django closes each request's connection in its thread."""
        monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)

        answers = [await get(pooled, f"/threads/connection/?id={n}") for n in range(3)]

        assert len({answer["thread"] for answer in answers}) == 1
        assert [answer["was_open"] for answer in answers] == [False, False, False]
        assert all(is_closed(raw) for raw in thread_views.RAW_CONNECTIONS)

    async def test_atomic_requests_and_atomic_blocks_work(
        self, pooled: LifespanASGIHandler, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """ATOMIC_REQUESTS wraps the view on its pooled thread; a failure rolls back."""
        monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)

        kept = await get(pooled, "/threads/atomic/?id=1&name=kept")
        status, _ = await fetch(pooled, "/threads/atomic/?id=2&name=lost&fail=1")

        assert kept["atomic"] is True
        assert status == 500
        assert await saved("kept") is True
        assert await saved("kept-inner") is True
        assert await saved("lost") is False
        assert await saved("lost-inner") is False

    async def test_lifespan_shutdown_closes_each_threads_connection(
        self,
        new_handler: Callable[[], LifespanASGIHandler],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """At lifespan shutdown, every pooled thread's connection is closed; threads end.

        With no overflow, the pool's report is at DEBUG level only.
        """
        caplog.set_level(logging.DEBUG, logger="lifespan_di")
        with with_threads(4):
            handler = new_handler()
            lifespan = Lifespan(handler, state={})
            assert await lifespan.send("lifespan.startup") == {
                "type": "lifespan.startup.complete"
            }
            paths = [f"/threads/connection/?id={n}&sleep=0.1" for n in range(4)]
            answers = await asyncio.gather(*(get(handler, path) for path in paths))
            threads = {(answer["thread"], answer["name"]) for answer in answers}

            assert await lifespan.send("lifespan.shutdown") == {
                "type": "lifespan.shutdown.complete"
            }

        assert len(thread_views.RAW_CONNECTIONS) == 4
        assert all(is_closed(raw) for raw in thread_views.RAW_CONNECTIONS)
        await wait_until(lambda: not threads & alive_threads())
        reports = [r for r in caplog.records if r.msg.startswith("REQUEST_THREADS:")]
        assert [(r.levelno, r.getMessage()) for r in reports] == [
            (
                logging.DEBUG,
                "REQUEST_THREADS: 0 of 4 requests found all 4 request threads lent "
                "and ran on a new thread each; at most 4 held one at once.",
            )
        ]


class TestGivingBack:
    async def test_a_thread_goes_back_only_once_its_work_has_finished(self) -> None:
        """A thread given back while its sync work runs is not lent again until done."""
        threads = RequestThreads(1)
        first = threads.lease()
        started, release = threading.Event(), threading.Event()
        future = first.submit(lambda: (started.set(), release.wait(5)))
        assert started.wait(5)

        threads.release(first)  # a cancelled request does so: its sync call still runs
        during = threads.lease()
        release.set()
        future.result(5)
        after = threads.lease()

        assert during is not first
        assert not during.pooled
        assert after is first
        threads.release(during)
        await threads.aclose()

    async def test_a_cancelled_request_gives_its_thread_back_after_its_view(
        self, new_handler: Callable[[], LifespanASGIHandler]
    ) -> None:
        """A request whose client left mid-view keeps its thread until the view ends."""
        with with_threads(1):
            handler = new_handler()
            gone = ApplicationCommunicator(
                handler, http_scope("/threads/sync/", b"id=1&sleep=0.5")
            )
            await gone.send_input({"type": "http.request", "body": b""})
            await wait_until(lambda: len(thread_views.EVENTS) >= 2)  # in the view

            await gone.send_input({"type": "http.disconnect"})
            meanwhile = await get(handler, "/threads/sync/?id=2")
            await gone.wait(TIMEOUT)
            after = await get(handler, "/threads/sync/?id=3")

        gone_thread = next(
            t for i, p, t in thread_views.EVENTS if i == "1" and p == "view"
        )
        assert not meanwhile["name"].startswith(POOLED)
        assert after["name"].startswith(POOLED)
        assert after["thread"] == gone_thread
        assert handler.request_threads is not None
        await handler.request_threads.aclose()


class TestSetting:
    @pytest.mark.parametrize("value", [0, -1, True, "8", 1.5])
    def test_a_bad_value_is_e014(self, value: object) -> None:
        """REQUEST_THREADS must be None or a whole number of at least 1."""
        with with_threads(value):
            found = [m for m in run_checks() if m.id == "lifespan_di.E014"]

        assert len(found) == 1
        assert f"LIFESPAN_DI['REQUEST_THREADS'] is {value!r}" in found[0].msg

    def test_an_asgiref_without_executors_is_e015(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With an asgiref whose ThreadSensitiveContext takes no executor, E015."""
        monkeypatch.setattr(
            "lifespan_di.request_threads.supports_executors", lambda: False
        )

        with with_threads(8):
            found = [m for m in run_checks() if m.id == "lifespan_di.E015"]

        assert len(found) == 1
        assert "asgiref 3.13 or later" in found[0].msg

    @pytest.mark.parametrize("value", [None, 1, 8])
    def test_good_values_pass(self, value: object) -> None:
        """None and positive whole numbers raise no check."""
        with with_threads(value):
            ids = [m.id for m in run_checks() if str(m.id).startswith("lifespan_di.")]

        assert ids == []


def is_closed(raw: Any) -> bool:
    try:
        raw.execute("select 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def alive_threads() -> set[tuple[int | None, str]]:
    return {(thread.ident, thread.name) for thread in threading.enumerate()}


async def wait_until(condition: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
