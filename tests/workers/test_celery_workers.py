"""Real Celery workers (tests/workers/app.py) with a real Redis broker.

Each resource starts once per worker process and stops once when it exits; each task
runs in a request scope of its own, whose teardowns see how the task ended.
"""

from __future__ import annotations

from collections import Counter

import pytest
from celery import Celery

from tests.workers.conftest import RESOURCES, TASK_TIMEOUT, StartWorker, Worker

pytestmark = pytest.mark.e2e

TASKS = 50
STARTS = [f"start:{name}" for name in RESOURCES]
STOPS = [f"stop:{name}" for name in reversed(RESOURCES)]


def run_tasks(broker: Celery, name: str, count: int = TASKS) -> list[object]:
    results = [
        broker.send_task(f"tests.workers.app.{name}", args=[n]) for n in range(count)
    ]
    return [result.get(timeout=TASK_TIMEOUT) for result in results]


def assert_each_process_started_and_stopped_once(
    worker: Worker, processes: int
) -> None:
    events = worker.resource_events()
    assert len(events) == processes, worker.log()
    for names in events.values():
        assert Counter(names) == Counter(STARTS + STOPS), worker.log()
        # Dependency order, for the chain config → pool → cache.
        assert (
            names.index("start:config")
            < names.index("start:pool")
            < names.index("start:cache")
        )
        assert (
            names.index("stop:cache")
            < names.index("stop:pool")
            < names.index("stop:config")
        )


def assert_one_scope_per_task(worker: Worker) -> None:
    names = worker.names()
    for event in ("session:open", "session:close", "outcome:open", "outcome:close"):
        assert sum(name.startswith(event) for name in names) == TASKS, worker.log()
    # The async request resource opened and closed on the lifespan's event loop.
    units = [name for name in names if name.startswith("unit:")]
    assert len(units) == 2 * TASKS, worker.log()
    assert all(name.endswith(" loop") for name in units), units
    # Each task used the session its own scope opened, and only while it was open
    # (ids are addresses, reused once an object is freed: follow them in order).
    for pid, events in worker.by_pid().items():
        open_sessions: set[str] = set()
        for name in events:
            kind, _, rest = name.partition(":")
            if kind == "session":
                action, _, handle = rest.partition(":")
                handle = handle.split()[0]
                if action == "open":
                    assert handle not in open_sessions, (pid, events)
                    open_sessions.add(handle)
                else:
                    open_sessions.remove(handle)
            elif kind == "task":
                assert rest.split()[1] in open_sessions, (pid, events)
        assert not open_sessions, (pid, events)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_each_prefork_child_runs_the_lifespan_once(
    start_worker: StartWorker, broker: Celery, start_method: str
) -> None:
    """With --pool=prefork --concurrency 2, each child starts each resource once,
    runs 50 tasks in a request scope each, and stops each resource once at SIGTERM;
    children forked (Linux) or spawned (``worker_pool_start_method``, macOS)."""
    worker = start_worker(
        "--pool=prefork", "--concurrency=2", LIFESPAN_DI_TEST_START_METHOD=start_method
    )
    worker.wait_started(processes=2)

    results = run_tasks(broker, "work")
    status = worker.shut_down()

    assert status == 0, worker.log()
    assert sorted(results) == list(
        range(1, TASKS + 1)
    )  # the loop-bound client, each task
    assert worker.pid not in worker.resource_events()  # the parent starts nothing
    assert_each_process_started_and_stopped_once(worker, processes=2)
    assert_one_scope_per_task(worker)


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_an_in_process_pool_runs_the_lifespan_in_the_worker(
    start_worker: StartWorker, broker: Celery, pool: str
) -> None:
    """With --pool=threads (or solo), the worker's own process starts each resource
    once, before any task, and stops each once after the last task, at SIGTERM."""
    worker = start_worker(f"--pool={pool}", "--concurrency=4")
    worker.wait_started(processes=1)

    results = run_tasks(broker, "work")
    status = worker.shut_down()

    assert status == 0, worker.log()
    assert sorted(results) == list(range(1, TASKS + 1))
    assert list(worker.resource_events()) == [worker.pid]
    assert_each_process_started_and_stopped_once(worker, processes=1)
    assert_one_scope_per_task(worker)


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_request_resources_see_how_the_task_ended(
    start_worker: StartWorker, broker: Celery, pool: str
) -> None:
    """A failing task's request resource sees its exception; a retried one sees
    Retry, then the retry's success."""
    worker = start_worker(f"--pool={pool}", "--concurrency=2")
    worker.wait_started(processes=1)

    failed = broker.send_task("tests.workers.app.fail")
    with pytest.raises(ValueError, match="the task failed"):
        failed.get(timeout=TASK_TIMEOUT)
    retried = broker.send_task("tests.workers.app.retry_once").get(timeout=TASK_TIMEOUT)
    worker.shut_down()

    assert retried == "retried"
    closes = [
        name.split()[1] for name in worker.names() if name.startswith("outcome:close")
    ]
    # The retry is queued before the first run's scope closes: with two processes
    # or threads, it may end first.
    assert closes[0] == "ValueError", worker.log()
    assert sorted(closes[1:]) == ["Retry", "ok"], worker.log()


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_worker_whose_resources_fail_exits_non_zero(
    start_worker: StartWorker, broker: Celery, pool: str
) -> None:
    """A resource that cannot start stops the worker with status 1, the resource
    named in its log, before it runs any task."""
    worker = start_worker(
        f"--pool={pool}", "--concurrency=2", LIFESPAN_DI_TEST_FAIL="pool"
    )
    broker.send_task("tests.workers.app.work", args=[0])

    status = worker.wait_exit()
    worker.wait_group_gone()

    assert status == 1, worker.log()
    assert "Cannot start resource 'WorkerContainer.pool'" in worker.log()
    assert not any(name.startswith("task:") for name in worker.names())
    # What started before the failure was shut down, in every process.
    for names in worker.resource_events().values():
        started = Counter(
            n.removeprefix("start:") for n in names if n.startswith("start:")
        )
        stopped = Counter(
            n.removeprefix("stop:") for n in names if n.startswith("stop:")
        )
        assert started == stopped, worker.log()


def test_recycled_children_each_run_their_own_lifespan(
    start_worker: StartWorker, broker: Celery
) -> None:
    """--max-tasks-per-child replaces a child: the old one stops its resources, the
    new one starts its own; a remote `celery control shutdown` stops the last."""
    worker = start_worker(
        "--pool=prefork", "--concurrency=1", "--max-tasks-per-child=5"
    )
    worker.wait_started(processes=1)

    run_tasks(broker, "work", count=10)
    worker.wait_started(processes=2)  # the second child, after the first five tasks
    broker.control.shutdown()
    status = worker.wait_exit()
    worker.wait_group_gone()

    assert status == 0, worker.log()
    assert_each_process_started_and_stopped_once(
        worker, processes=len(worker.resource_events())
    )
    assert len(worker.resource_events()) >= 2
