"""lifespan_di.celery in process: the per-task scope (eager tasks) and the refusals.

Real workers, pools and shutdowns are in tests/workers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery, signals
from celery.concurrency.base import BasePool
from dependency_injector import containers

import lifespan_di.celery
from lifespan_di import Provide, RequestResource, inject, lifespan

EVENTS: list[str] = []


def open_outcome() -> Iterator[object]:
    """Records ``open``, then ``close:ok`` or ``close:<exception type>``."""
    EVENTS.append("open")
    try:
        yield object()
    except BaseException as error:
        EVENTS.append(f"close:{type(error).__name__}")
        raise
    EVENTS.append("close:ok")


class Container(containers.DeclarativeContainer):
    outcome = RequestResource(open_outcome)


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("tests.test_celery", set_as_current=False)
    app.conf.task_always_eager = True
    lifespan_di.celery.install(app)
    yield app
    app.close()


@pytest.fixture
def container() -> Iterator[Container]:
    EVENTS.clear()
    container = Container()
    with lifespan(container):
        yield container


class TestTaskScope:
    def test_each_task_gets_its_own_request_scope(
        self, app: Celery, container: Container
    ) -> None:
        """Each task opens its request resource once and closes it after the task."""

        @app.task
        @inject
        def task(outcome: object = Provide[Container.outcome]) -> int:
            assert outcome is Container.outcome()
            return id(outcome)

        task.apply().get()
        task.apply().get()

        assert EVENTS == ["open", "close:ok", "open", "close:ok"]

    def test_a_failing_task_teardown_sees_the_exception(
        self, app: Celery, container: Container
    ) -> None:
        """The task's exception is raised where the request resource yielded."""

        @app.task
        @inject
        def task(outcome: object = Provide[Container.outcome]) -> None:
            msg = "the task failed"
            raise ValueError(msg)

        result = task.apply()

        assert result.state == "FAILURE"
        assert EVENTS == ["open", "close:ValueError"]

    def test_an_interrupt_reaches_the_teardown(
        self, app: Celery, container: Container
    ) -> None:
        """A BaseException leaving the task (no state recorded) reaches it too."""

        @app.task
        @inject
        def task(outcome: object = Provide[Container.outcome]) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            task.apply()

        assert EVENTS == ["open", "close:KeyboardInterrupt"]

    def test_tasks_of_another_app_get_no_scope(self, app: Celery) -> None:
        """Only the installed app's tasks are given a scope."""
        other = Celery("tests.test_celery.other", set_as_current=False)
        other.conf.task_always_eager = True

        @other.task
        def task() -> bool:
            return lifespan_di.scope.current_scope() is None

        assert task.apply().get() is True
        other.close()


class FakeWorker:
    """What the receivers read of Celery's WorkController."""

    def __init__(self, app: Celery, pool_cls: object) -> None:
        self.app = app
        self.pool_cls = pool_cls
        self.exitcode: int | None = None


class TestInstall:
    def test_installing_twice_connects_once(self, app: Celery) -> None:
        """A second install() for the same app adds no receivers."""
        before = len(signals.task_prerun.receivers)

        lifespan_di.celery.install(app)

        assert len(signals.task_prerun.receivers) == before

    def test_an_unsupported_pool_stops_the_worker(
        self, app: Celery, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A pool other than prefork, solo or threads exits with status 1, saying so."""

        class GreenPool(BasePool):
            pass

        worker = FakeWorker(app, GreenPool)

        with pytest.raises(SystemExit) as exited:
            signals.worker_init.send(sender=worker)

        assert exited.value.code == 1
        assert "GreenPool is not supported" in caplog.text
        assert "prefork, solo and threads" in caplog.text

    def test_a_failed_start_in_the_worker_exits_non_zero(
        self, app: Celery, caplog: pytest.LogCaptureFixture, settings: object
    ) -> None:
        """With the threads pool, a lifespan that cannot start exits with status 1."""
        worker = FakeWorker(app, "threads")
        settings.LIFESPAN_DI = {"CONTAINER": "tests.test_celery.Missing"}  # type: ignore[attr-defined]

        with pytest.raises(SystemExit) as exited:
            signals.worker_init.send(sender=worker)

        assert exited.value.code == 1
        assert "Cannot start the resources of the worker" in caplog.text
