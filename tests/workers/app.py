"""The Celery app the tests run real workers of, with lifespan_di installed.

Its broker and result backend is the test's Redis server, listening on the Unix
socket ``LIFESPAN_DI_TEST_REDIS``.
"""

from __future__ import annotations

import os
import time

import redis.asyncio
from celery import Celery, Task

import lifespan_di
import lifespan_di.celery
from lifespan_di import Provide, inject
from tests.servers.containers import Handle, record
from tests.workers.containers import WorkerContainer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.workers.settings")

REDIS_URL = f"redis+socket://{os.environ.get('LIFESPAN_DI_TEST_REDIS', '')}"

app = Celery("tests.workers")
app.conf.update(
    broker_url=REDIS_URL,
    result_backend=REDIS_URL,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_pool_start_method=os.environ.get("LIFESPAN_DI_TEST_START_METHOD", "fork"),
)
lifespan_di.celery.install(app)


@app.task
@inject
def work(
    number: int,
    pool: Handle = Provide[WorkerContainer.pool],
    client: redis.asyncio.Redis = Provide[WorkerContainer.redis],
    session: Handle = Provide[WorkerContainer.session],
    unit: Handle = Provide[WorkerContainer.unit],
    outcome: Handle = Provide[WorkerContainer.outcome],
) -> int:
    """Use an app resource, a loop-bound client, and sync and async request
    resources; return how many tasks have run."""
    assert not pool.closed
    assert session is WorkerContainer.session()  # one instance for the whole task
    count, units = lifespan_di.run(count_task(client))
    assert units is unit  # the coroutine ran in the task's request scope
    record(f"task:{number} {id(session)}")
    return count


async def count_task(client: redis.asyncio.Redis) -> tuple[int, Handle]:
    return await client.incr("work"), await WorkerContainer.unit.async_()


@app.task
@inject
def fail(outcome: Handle = Provide[WorkerContainer.outcome]) -> None:
    msg = "the task failed"
    raise ValueError(msg)


@app.task(bind=True, max_retries=1)
@inject
def retry_once(self: Task, outcome: Handle = Provide[WorkerContainer.outcome]) -> str:
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return "retried"


@app.task
def sleep(seconds: float) -> None:
    """Hold a worker process, so that a shutdown finds a task running."""
    time.sleep(seconds)
