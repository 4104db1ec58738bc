"""The workers' container: the server matrix's, plus what tasks need.

- ``redis``: a ``redis.asyncio`` client of the test's Redis server (on the Unix
  socket ``LIFESPAN_DI_TEST_REDIS``), bound to the event loop it was created on: tasks use
  it through ``lifespan_di.run()``.
- ``outcome``: a request resource that records how the task using it ended,
  ``outcome:close:<id> <exception type or ok>``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import redis.asyncio
from dependency_injector import providers

from lifespan_di import RequestResource
from tests.servers.containers import Container, Handle, record

__all__ = ["WorkerContainer"]


async def open_redis() -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis(unix_socket_path=os.environ["LIFESPAN_DI_TEST_REDIS"])
    await client.ping()
    record("start:redis")
    yield client
    record("stop:redis")
    await client.aclose()


def open_outcome() -> Iterator[Handle]:
    handle = Handle("outcome")
    record(f"outcome:open:{id(handle)}")
    try:
        yield handle
    except BaseException as error:
        record(f"outcome:close:{id(handle)} {type(error).__name__}")
        raise
    record(f"outcome:close:{id(handle)} ok")


class WorkerContainer(Container):
    redis = providers.Resource(open_redis)
    outcome = RequestResource(open_outcome)
