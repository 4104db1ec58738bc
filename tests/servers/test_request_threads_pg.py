"""REQUEST_THREADS on a real PostgreSQL server, under a real uvicorn.

Each request of the ``backend/`` view runs one query and answers the PostgreSQL
backend (server process) serving its connection, and its thread's name: pooled
threads are ``lifespan_di-request-<n>``, the threads of requests past the pool's size
``lifespan_di-overflow``.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.processes import Postgres, backend_pids, postgres_server
from tests.servers.conftest import Launch
from tests.servers.harness import UVICORN, Server

pytestmark = pytest.mark.servers

REQUESTS = 2000
CONCURRENCY = 32
THREADS = 8
GONE_TIMEOUT = 10.0
"""Bound on the wait for backends to end once their clients did."""


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as pg:
        yield pg


def serve(launch: Launch, pg: Postgres, threads: int | None) -> Server:
    server = launch(
        UVICORN,
        DJANGO_SETTINGS_MODULE="tests.servers.postgres_settings",
        LIFESPAN_DI_TEST_PG_HOST=str(pg.socket_dir),
        LIFESPAN_DI_TEST_PG_PORT=str(pg.port),
        LIFESPAN_DI_TEST_PG_NAME=pg.database,
        LIFESPAN_DI_TEST_PG_USER=pg.user,
        LIFESPAN_DI_TEST_CONN_MAX_AGE="60",
        LIFESPAN_DI_TEST_REQUEST_THREADS="" if threads is None else str(threads),
    )
    server.wait_ready()
    server.wait_started()
    return server


async def load(server: Server, requests: int, concurrency: int) -> list[dict[str, Any]]:
    """Send ``requests`` GETs of ``backend/``, ``concurrency`` at a time."""
    pending = iter(range(requests))
    answers: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=server.base_url, timeout=30.0, limits=limits
    ) as client:

        async def worker() -> None:
            for _ in pending:
                response = await client.get("/backend/")
                assert response.status_code == 200, response.text
                answers.append(response.json())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answers


def wait_no_backends(pg: Postgres) -> set[int]:
    deadline = time.monotonic() + GONE_TIMEOUT
    while (left := backend_pids(pg)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_pooled_threads_reuse_their_connections_and_close_them_at_shutdown(
    launch: Launch, postgres: Postgres
) -> None:
    """2,000 requests at 32 concurrency: at most 8 backends for pooled threads, reused; none left after SIGTERM."""
    server = serve(launch, postgres, THREADS)

    answers = asyncio.run(load(server, REQUESTS, CONCURRENCY))
    during = backend_pids(postgres)
    server.send_signal(signal.SIGTERM)
    server.wait_exit()
    left = wait_no_backends(postgres)

    pooled = [a for a in answers if a["thread"].startswith("lifespan_di-request-")]
    overflow = [a for a in answers if a["thread"].startswith("lifespan_di-overflow")]
    assert len(pooled) + len(overflow) == REQUESTS
    pooled_backends = {answer["backend"] for answer in pooled}
    assert len(pooled_backends) <= THREADS
    assert len(pooled) >= REQUESTS // 2, len(overflow)  # reused, not one per request
    assert len({a["backend"] for a in answers}) <= THREADS + len(overflow)
    assert during <= pooled_backends, "an overflow request left its connection open"
    assert left == set(), server.log()


def test_without_the_setting_each_thread_opens_its_own_connection(
    launch: Launch, postgres: Postgres
) -> None:
    """Without REQUEST_THREADS and CONN_MAX_AGE = 60, Django opens a connection per request's thread."""
    server = serve(launch, postgres, None)

    answers = asyncio.run(load(server, 200, 8))
    server.send_signal(signal.SIGTERM)
    server.wait_exit()
    wait_no_backends(postgres)

    assert len({answer["backend"] for answer in answers}) > THREADS
