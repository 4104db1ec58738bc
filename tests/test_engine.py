"""The lifecycle engine: order, concurrency, rollback, timeouts, shutdown, restarts."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from dependency_injector import containers, providers, resources

from lifespan_di import container_lifespan
from lifespan_di.core.lifespan import LIFESPAN_STATE_KEY, RUNTIME
from lifespan_di.exceptions import AlreadyRunningError, ShutdownError, StartupError
from tests.recorder import Recorder


def chain_container(recorder: Recorder) -> containers.DeclarativeContainer:
    """A -> B -> C, where each link goes through a non-resource provider."""

    class Chain(containers.DeclarativeContainer):
        a = providers.Resource(recorder.async_resource("a", delay=0.02))
        uses_a = providers.Factory(dict, a=a)
        b = providers.Resource(recorder.sync_resource("b"), uses_a=uses_a)
        uses_b = providers.Singleton(dict, b=b)
        c = providers.Resource(recorder.async_resource("c"), uses_b=uses_b)

    return Chain()


class TestOrder:
    async def test_chain_through_factory_and_singleton(
        self, recorder: Recorder
    ) -> None:
        """A chain A->B->C through a Factory and a Singleton starts A,B,C and stops C,B,A."""
        for _ in range(5):
            recorder.events.clear()
            container = chain_container(recorder)

            async with container_lifespan(container):
                pass

            assert recorder.events == [
                "start:a",
                "start:b",
                "start:c",
                "stop:c",
                "stop:b",
                "stop:a",
            ]

    async def test_independent_resources_start_concurrently(
        self, recorder: Recorder
    ) -> None:
        """10 independent resources of 0.2 s each start in well under the 2 s sum."""
        names = [f"r{i}" for i in range(10)]
        container = containers.DynamicContainer()
        for name in names:
            setattr(
                container,
                name,
                providers.Resource(recorder.async_resource(name, delay=0.2)),
            )

        began = time.perf_counter()
        async with container_lifespan(container):
            elapsed = time.perf_counter() - began

        assert elapsed < 0.6
        assert sorted(recorder.started) == sorted(names)
        assert sorted(recorder.stopped) == sorted(names)

    async def test_sync_resources_start_concurrently_in_threads(
        self, recorder: Recorder
    ) -> None:
        """Blocking generator resources start in worker threads, so they overlap too."""
        container = containers.DynamicContainer()
        for i in range(4):
            setattr(
                container,
                f"s{i}",
                providers.Resource(recorder.sync_resource(f"s{i}", delay=0.2)),
            )

        began = time.perf_counter()
        async with container_lifespan(container):
            elapsed = time.perf_counter() - began

        assert elapsed < 0.6
        assert len(recorder.stopped) == 4

    async def test_each_resource_starts_once(self, recorder: Recorder) -> None:
        """A resource used by several others, and aliased, starts and stops exactly once."""

        class Shared(containers.DeclarativeContainer):
            base = providers.Resource(recorder.async_resource("base"))
            alias = base
            left = providers.Resource(recorder.async_resource("left"), base=base)
            right = providers.Resource(recorder.async_resource("right"), base=alias)

        async with container_lifespan(Shared()) as state:
            assert state["base"] is state["alias"]

        assert recorder.started.count("base") == 1
        assert recorder.stopped.count("base") == 1
        assert recorder.events[-1] == "stop:base"

    async def test_nested_container_dependencies(self, recorder: Recorder) -> None:
        """A resource depending on a nested container's resource starts after it."""

        # --8<-- [start:nested]
        class Infra(containers.DeclarativeContainer):
            cache = providers.Resource(recorder.async_resource("cache", delay=0.02))

        class App(containers.DeclarativeContainer):
            infra = providers.Container(Infra)
            service = providers.Factory(dict, cache=infra.cache)
            api = providers.Resource(recorder.async_resource("api"), service=service)

        # --8<-- [end:nested]

        async with container_lifespan(App()) as state:
            assert state["infra.cache"].name == "cache"

        assert recorder.events == ["start:cache", "start:api", "stop:api", "stop:cache"]

    async def test_configuration_dependency(self, recorder: Recorder) -> None:
        """Configuration values reach resources, and a Callable chain still orders them."""

        # --8<-- [start:configuration]
        class Configured(containers.DeclarativeContainer):
            config = providers.Configuration()
            db = providers.Resource(
                recorder.async_resource("db", delay=0.02), url=config.url
            )
            dsn = providers.Callable(str, db)
            pool = providers.Resource(recorder.async_resource("pool"), dsn=dsn)

        container = Configured()
        container.config.from_dict({"url": "sqlite://"})
        # --8<-- [end:configuration]

        async with container_lifespan(container) as state:
            assert state["db"].deps == {"url": "sqlite://"}

        assert recorder.events == ["start:db", "start:pool", "stop:pool", "stop:db"]

    async def test_cycle_is_a_configuration_error(self, recorder: Recorder) -> None:
        """Resources that depend on each other in a cycle fail before anything starts."""
        from lifespan_di.exceptions import ConfigurationError

        class Cycle(containers.DeclarativeContainer):
            a = providers.Resource(recorder.async_resource("a"))
            b = providers.Resource(recorder.async_resource("b"), a=a)

        container = Cycle()
        container.a.add_kwargs(b=container.b)

        with pytest.raises(
            ConfigurationError, match=r"Cycle\.a, Cycle\.b: they depend on each other"
        ):
            await container_lifespan(container).startup()

        assert recorder.events == []


class TestResourceForms:
    async def test_every_form_dependency_injector_accepts(self) -> None:
        """Functions, generators, async generators, context managers and Resource classes start and stop."""
        log: list[str] = []

        # --8<-- [start:forms]
        def function() -> str:
            log.append("start:function")
            return "function"

        def generator() -> Iterator[str]:
            log.append("start:generator")
            yield "generator"
            log.append("stop:generator")

        async def async_generator() -> AsyncIterator[str]:
            log.append("start:async_generator")
            yield "async_generator"
            log.append("stop:async_generator")

        async def coroutine() -> str:
            log.append("start:coroutine")
            return "coroutine"

        @contextmanager
        def sync_cm() -> Iterator[str]:
            log.append("start:sync_cm")
            yield "sync_cm"
            log.append("stop:sync_cm")

        @asynccontextmanager
        async def async_cm() -> AsyncIterator[str]:
            log.append("start:async_cm")
            yield "async_cm"
            log.append("stop:async_cm")

        class SyncResource(resources.Resource[str]):
            def init(self) -> str:
                log.append("start:sync_class")
                return "sync_class"

            def shutdown(self, resource: str | None) -> None:
                log.append("stop:sync_class")

        class AsyncResource(resources.AsyncResource[str]):
            async def init(self) -> str:
                log.append("start:async_class")
                return "async_class"

            async def shutdown(self, resource: str | None) -> None:
                log.append("stop:async_class")

        class Forms(containers.DeclarativeContainer):
            function_ = providers.Resource(function)
            generator_ = providers.Resource(generator)
            async_generator_ = providers.Resource(async_generator)
            coroutine_ = providers.Resource(coroutine)
            sync_cm_ = providers.Resource(sync_cm)
            async_cm_ = providers.Resource(async_cm)
            sync_class = providers.Resource(SyncResource)
            async_class = providers.Resource(AsyncResource)

        # --8<-- [end:forms]

        async with container_lifespan(Forms()) as state:
            values = {
                key: value for key, value in state.items() if key != LIFESPAN_STATE_KEY
            }

        assert values == {
            "function_": "function",
            "generator_": "generator",
            "async_generator_": "async_generator",
            "coroutine_": "coroutine",
            "sync_cm_": "sync_cm",
            "async_cm_": "async_cm",
            "sync_class": "sync_class",
            "async_class": "async_class",
        }
        stops = {event for event in log if event.startswith("stop:")}
        assert stops == {
            "stop:generator",
            "stop:async_generator",
            "stop:sync_cm",
            "stop:async_cm",
            "stop:sync_class",
            "stop:async_class",
        }

    async def test_context_local_resource_is_left_alone(
        self, recorder: Recorder
    ) -> None:
        """ContextLocalResource is per request, so the app lifespan neither starts nor publishes it."""

        class Scoped(containers.DeclarativeContainer):
            app = providers.Resource(recorder.async_resource("app"))
            per_request = providers.ContextLocalResource(
                recorder.async_resource("per_request")
            )

        async with container_lifespan(Scoped()) as state:
            assert "per_request" not in state

        assert recorder.started == ["app"]

    async def test_inline_resource_is_started(self, recorder: Recorder) -> None:
        """A Resource declared inline inside another provider starts and stops too."""

        class Inline(containers.DeclarativeContainer):
            service = providers.Factory(
                dict, client=providers.Resource(recorder.async_resource("inline"))
            )

        container = Inline()
        async with container_lifespan(container):
            assert container.service()["client"].name == "inline"

        assert recorder.events == ["start:inline", "stop:inline"]


class TestStartedValues:
    async def test_sync_callers_get_values_not_futures(
        self, recorder: Recorder
    ) -> None:
        """After startup an async resource, and a Factory built from it, resolve to plain values from a thread."""

        class Async(containers.DeclarativeContainer):
            client = providers.Resource(recorder.async_resource("client"))
            service = providers.Factory(dict, client=client)

        container = Async()
        async with container_lifespan(container) as state:
            from_thread = await asyncio.to_thread(
                lambda: (container.client(), container.service())
            )
            from_loop = container.client()

        assert from_thread[0] is state["client"]
        assert from_thread[1] == {"client": state["client"]}
        assert from_loop is state["client"]

    async def test_state_publishes_values_and_marker(self, recorder: Recorder) -> None:
        """The state maps provider names to started values, plus one namespaced marker."""
        container = chain_container(recorder)

        async with container_lifespan(container) as state:
            lifespan = state[LIFESPAN_STATE_KEY]
            names = sorted(key for key in state if key != LIFESPAN_STATE_KEY)

        assert names == ["a", "b", "c"]
        assert lifespan.container is container

    async def test_restart_builds_everything_anew(self, recorder: Recorder) -> None:
        """A container started twice gets new resources, and Singletons built from closed ones are reset."""
        container = chain_container(recorder)

        async with container_lifespan(container) as first:
            first_b, first_uses_b = first["b"], container.uses_b()
        async with container_lifespan(container) as second:
            second_b, second_uses_b = second["b"], container.uses_b()
            first_b_closed_during_second = first_b.closed

        assert first_b_closed_during_second
        assert second_b is not first_b
        assert first_uses_b["b"] is first_b
        assert second_uses_b["b"] is second_b
        assert recorder.started == ["a", "b", "c", "a", "b", "c"]

    async def test_already_running_is_refused(self, recorder: Recorder) -> None:
        """Starting a container whose lifespan runs raises AlreadyRunningError and leaves it running."""
        container = chain_container(recorder)

        async with container_lifespan(container):
            with pytest.raises(AlreadyRunningError, match="already running"):
                await container_lifespan(container).startup()
            assert RUNTIME.active is not None

        assert recorder.stopped == ["c", "b", "a"]

    async def test_runtime_tracks_the_running_lifespan(
        self, recorder: Recorder
    ) -> None:
        """The process records the lifespan while it runs and forgets it at shutdown."""
        container = chain_container(recorder)
        lifespan = container_lifespan(container)

        async with lifespan:
            active = RUNTIME.active

        assert active is lifespan
        assert RUNTIME.active is None

    async def test_logs_each_start_and_stop(
        self, recorder: Recorder, caplog: pytest.LogCaptureFixture
    ) -> None:
        """One INFO line per resource start and stop with its duration, and a summary line."""
        caplog.set_level(logging.INFO, logger="lifespan_di")

        async with container_lifespan(chain_container(recorder)):
            pass

        messages = [record.getMessage() for record in caplog.records]
        assert any(
            message.startswith("Started resource Chain.a in ") for message in messages
        )
        assert any(
            message.startswith("Stopped resource Chain.c in ") for message in messages
        )
        assert any(
            message.startswith("Started 3 resources of Chain in ")
            for message in messages
        )
        assert any(
            message.startswith("Stopped 3 resources of Chain in ")
            for message in messages
        )

    async def test_the_summary_counts_one_resource_in_the_singular(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """ "Started 1 resource of One", not "1 resources"."""
        caplog.set_level(logging.INFO, logger="lifespan_di")

        class One(containers.DeclarativeContainer):
            db = providers.Resource(lambda: "db")

        async with container_lifespan(One()):
            pass

        summaries = [
            message
            for message in (record.getMessage() for record in caplog.records)
            if " of One in " in message
        ]
        assert [message.split(" in ")[0] for message in summaries] == [
            "Started 1 resource of One",
            "Stopped 1 resource of One",
        ]

    async def test_failures_are_logged_with_tracebacks(
        self, recorder: Recorder, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failed start and a failed teardown are each logged at ERROR with their traceback."""

        class Failing(containers.DeclarativeContainer):
            bad_stop = providers.Resource(
                recorder.async_resource("bad_stop", fail_stop=RuntimeError("flush"))
            )
            bad_start = providers.Resource(
                recorder.async_resource(
                    "bad_start", delay=0.01, fail_start=OSError("down")
                ),
                bad_stop=bad_stop,
            )

        with pytest.raises(StartupError):
            await container_lifespan(Failing()).startup()

        errors = {
            record.getMessage(): record
            for record in caplog.records
            if record.levelno == logging.ERROR
        }
        assert isinstance(
            errors["Resource Failing.bad_start failed to start."].exc_info[1], OSError
        )  # type: ignore[index]
        assert isinstance(
            errors["Resource Failing.bad_stop failed to shut down."].exc_info[1],
            RuntimeError,
        )  # type: ignore[index]


def failing_container(recorder: Recorder, fail: str) -> containers.Container:
    """first -> middle -> last, plus an independent one; ``fail`` names the one that raises."""

    def resource(name: str, delay: float = 0.0) -> Any:
        error = ConnectionRefusedError(f"{name} is down") if name == fail else None
        return recorder.async_resource(name, delay=delay, fail_start=error)

    class Failing(containers.DeclarativeContainer):
        independent = providers.Resource(resource("independent"))
        first = providers.Resource(resource("first"))
        middle = providers.Resource(resource("middle", delay=0.01), first=first)
        last = providers.Resource(resource("last", delay=0.01), middle=middle)

    return Failing()


class TestStartupFailure:
    @pytest.mark.parametrize(
        ("fail", "rolled_back"),
        [
            ("first", ["independent"]),
            ("middle", ["independent", "first"]),
            ("last", ["independent", "middle", "first"]),
        ],
    )
    async def test_rollback_stops_what_started(
        self, recorder: Recorder, fail: str, rolled_back: list[str]
    ) -> None:
        """A resource that fails to start shuts down the ones started before it, newest first."""
        container = failing_container(recorder, fail)

        with pytest.raises(StartupError) as caught:
            await container_lifespan(container).startup()

        assert caught.value.resource == f"Failing.{fail}"
        assert isinstance(caught.value.__cause__, ConnectionRefusedError)
        assert sorted(recorder.stopped) == sorted(recorder.started)
        assert sorted(recorder.stopped) == sorted(rolled_back)
        message = str(caught.value)
        assert message.startswith(
            f"Cannot start resource 'Failing.{fail}': it raised ConnectionRefusedError"
        )
        assert "Resources started before it were shut down:" in message
        assert RUNTIME.active is None

    async def test_simultaneous_failures_are_all_named(
        self, recorder: Recorder
    ) -> None:
        """Resources failing together are all named, the first declared one as the cause."""

        class Both(containers.DeclarativeContainer):
            one = providers.Resource(
                recorder.async_resource("one", fail_start=OSError("one"))
            )
            two = providers.Resource(
                recorder.async_resource("two", fail_start=OSError("two"))
            )

        with pytest.raises(StartupError) as caught:
            await container_lifespan(Both()).startup()

        assert caught.value.resource == "Both.one"
        assert (
            "At the same time, these failed too: 'Both.two' (OSError('two'))."
            in str(caught.value)
        )

    async def test_failure_of_a_dependency_of_a_dependency(
        self, recorder: Recorder
    ) -> None:
        """When a dependency's dependency fails, its dependents never start."""
        container = failing_container(recorder, "first")

        with pytest.raises(StartupError):
            await container_lifespan(container).startup()

        assert "middle" not in recorder.started
        assert "last" not in recorder.started

    async def test_rollback_keeps_order_newest_first(self, recorder: Recorder) -> None:
        """Rolled-back dependencies stop after the resources that use them."""
        container = failing_container(recorder, "last")

        with pytest.raises(StartupError) as caught:
            await container_lifespan(container).startup()

        assert recorder.stopped.index("middle") < recorder.stopped.index("first")
        assert caught.value.rolled_back[-1] == "Failing.first"

    async def test_startup_timeout_rolls_back(self, recorder: Recorder) -> None:
        """A resource that exceeds startup_timeout fails the startup, naming it, and the others are shut down."""

        class Slow(containers.DeclarativeContainer):
            fast = providers.Resource(recorder.async_resource("fast"))
            slow = providers.Resource(recorder.async_resource("slow", delay=30))

        began = time.perf_counter()
        with pytest.raises(StartupError) as caught:
            await container_lifespan(Slow(), startup_timeout=0.2).startup()

        assert time.perf_counter() - began < 2
        assert caught.value.resource == "Slow.slow"
        assert isinstance(caught.value.__cause__, TimeoutError)
        assert "STARTUP_TIMEOUT (0.2 s)" in str(caught.value)
        assert recorder.events == ["start:fast", "stop:fast"]

    async def test_startup_timeout_is_one_deadline(self, recorder: Recorder) -> None:
        """The timeout bounds the whole startup: a chain of individually short starts can exceed it."""

        class Chain(containers.DeclarativeContainer):
            a = providers.Resource(recorder.async_resource("a", delay=0.15))
            b = providers.Resource(recorder.async_resource("b", delay=0.15), a=a)
            c = providers.Resource(recorder.async_resource("c", delay=0.15), b=b)

        with pytest.raises(StartupError) as caught:
            await container_lifespan(Chain(), startup_timeout=0.35).startup()

        assert caught.value.resource == "Chain.c"
        assert recorder.events == ["start:a", "start:b", "stop:b", "stop:a"]

    async def test_hung_sync_start_is_waited_for_and_shut_down(
        self, recorder: Recorder
    ) -> None:
        """A sync resource still starting in its thread at the timeout is shut down once it finishes."""

        class Blocking(containers.DeclarativeContainer):
            blocking = providers.Resource(recorder.sync_resource("blocking", delay=0.4))

        with pytest.raises(StartupError):
            await container_lifespan(Blocking(), startup_timeout=0.1).startup()

        assert recorder.events == ["start:blocking", "stop:blocking"]

    async def test_cancelled_startup_rolls_back_and_stays_cancelled(
        self, recorder: Recorder
    ) -> None:
        """Cancelling startup stops what started and re-raises CancelledError."""

        class Slow(containers.DeclarativeContainer):
            fast = providers.Resource(recorder.async_resource("fast"))
            slow = providers.Resource(recorder.async_resource("slow", delay=30))

        task = asyncio.create_task(container_lifespan(Slow()).startup())
        await asyncio.sleep(0.1)
        task.cancel()

        with pytest.raises(asyncio.CancelledError):
            await task
        assert recorder.events == ["start:fast", "stop:fast"]
        assert RUNTIME.active is None

    async def test_failed_startup_can_be_retried(self, recorder: Recorder) -> None:
        """After a failed startup the container is released and can start again."""
        broken = {"fail": True}

        async def flaky() -> AsyncIterator[str]:
            if broken["fail"]:
                raise ConnectionError("not yet")
            yield "ok"

        class Flaky(containers.DeclarativeContainer):
            service = providers.Resource(flaky)

        container = Flaky()
        with pytest.raises(StartupError):
            await container_lifespan(container).startup()
        broken["fail"] = False

        async with container_lifespan(container) as state:
            assert state["service"] == "ok"

    async def test_rollback_teardown_error_is_reported(
        self, recorder: Recorder
    ) -> None:
        """A teardown failing during rollback is named in the startup error; the rest still stop."""

        class Both(containers.DeclarativeContainer):
            bad_stop = providers.Resource(
                recorder.async_resource("bad_stop", fail_stop=RuntimeError("stuck"))
            )
            other = providers.Resource(recorder.async_resource("other"))
            broken = providers.Resource(
                recorder.async_resource(
                    "broken", delay=0.01, fail_start=OSError("boom")
                ),
                bad_stop=bad_stop,
                other=other,
            )

        with pytest.raises(StartupError) as caught:
            await container_lifespan(Both()).startup()

        assert "Shutting down 'Both.bad_stop' failed too: RuntimeError('stuck')" in str(
            caught.value
        )
        assert sorted(recorder.stopped) == ["bad_stop", "other"]


class TestShutdown:
    async def test_every_teardown_attempted_when_two_raise(
        self, recorder: Recorder
    ) -> None:
        """Two failing teardowns are reported together; every other resource still stops."""

        class Failing(containers.DeclarativeContainer):
            base = providers.Resource(recorder.async_resource("base"))
            one = providers.Resource(
                recorder.async_resource("one", fail_stop=RuntimeError("one")), base=base
            )
            two = providers.Resource(
                recorder.sync_resource("two", fail_stop=ValueError("two")), base=base
            )
            fine = providers.Resource(recorder.async_resource("fine"))

        lifespan = container_lifespan(Failing())
        await lifespan.startup()

        with pytest.raises(ShutdownError) as caught:
            await lifespan.shutdown()

        assert sorted(recorder.stopped) == ["base", "fine", "one", "two"]
        assert recorder.stopped[-1] == "base"
        assert sorted(caught.value.resources) == ["Failing.one", "Failing.two"]
        assert {type(error) for error in caught.value.exceptions} == {
            RuntimeError,
            ValueError,
        }
        notes = [
            note
            for error in caught.value.exceptions
            for note in getattr(error, "__notes__", [])
        ]
        assert "Raised while shutting down resource 'Failing.one'." in notes
        assert "'Failing.one' (RuntimeError('one'))" in caught.value.message

    async def test_hung_teardown_is_bounded(self, recorder: Recorder) -> None:
        """A teardown exceeding shutdown_timeout fails alone; the others, its dependencies included, still stop."""

        class Hung(containers.DeclarativeContainer):
            base = providers.Resource(recorder.async_resource("base"))
            hung = providers.Resource(
                recorder.async_resource("hung", stop_delay=30), base=base
            )
            other = providers.Resource(recorder.async_resource("other"))

        lifespan = container_lifespan(Hung(), shutdown_timeout=0.2)
        await lifespan.startup()

        began = time.perf_counter()
        with pytest.raises(ShutdownError) as caught:
            await lifespan.shutdown()

        assert time.perf_counter() - began < 2
        assert caught.value.resources == ("Hung.hung",)
        assert isinstance(caught.value.exceptions[0], TimeoutError)
        assert "SHUTDOWN_TIMEOUT (0.2 s)" in str(caught.value.exceptions[0])
        assert sorted(recorder.stopped) == ["base", "other"]

    async def test_independent_teardowns_run_concurrently(
        self, recorder: Recorder
    ) -> None:
        """Independent resources stop concurrently: shutdown takes the longest teardown, not the sum."""
        container = containers.DynamicContainer()
        for i in range(5):
            setattr(
                container,
                f"r{i}",
                providers.Resource(recorder.async_resource(f"r{i}", stop_delay=0.2)),
            )
        lifespan = container_lifespan(container)
        await lifespan.startup()

        began = time.perf_counter()
        await lifespan.shutdown()

        assert time.perf_counter() - began < 0.6
        assert len(recorder.stopped) == 5

    async def test_failed_teardown_does_not_survive_restart(
        self, recorder: Recorder
    ) -> None:
        """A resource whose teardown raised is started afresh by the next lifespan."""

        class Once(containers.DeclarativeContainer):
            bad = providers.Resource(
                recorder.async_resource("bad", fail_stop=RuntimeError("x"))
            )

        container = Once()
        lifespan = container_lifespan(container)
        first = (await lifespan.startup())["bad"]
        with pytest.raises(ShutdownError):
            await lifespan.shutdown()

        with pytest.raises(ShutdownError):
            async with container_lifespan(container) as state:
                second = state["bad"]

        assert second is not first
        assert recorder.events == ["start:bad", "stop:bad", "start:bad", "stop:bad"]

    async def test_no_timeouts(self, recorder: Recorder) -> None:
        """Timeouts of None leave startup and each teardown unbounded."""
        lifespan = container_lifespan(
            chain_container(recorder), startup_timeout=None, shutdown_timeout=None
        )

        async with lifespan:
            pass

        assert recorder.stopped == ["c", "b", "a"]

    async def test_shutdown_without_startup_does_nothing(
        self, recorder: Recorder
    ) -> None:
        """Calling shutdown on a lifespan that never started is a no-op."""
        lifespan = container_lifespan(chain_container(recorder))

        await lifespan.shutdown()

        assert recorder.events == []


async def test_thread_start_sees_context_variables(recorder: Recorder) -> None:
    """Sync resources start in a worker thread with a copy of the caller's context."""
    seen: list[str] = []

    def generator() -> Iterator[str]:
        seen.append(threading.current_thread().name)
        yield "x"

    class Threaded(containers.DeclarativeContainer):
        value = providers.Resource(generator)

    async with container_lifespan(Threaded()):
        pass

    assert seen
    assert seen[0] != threading.main_thread().name


async def test_invalid_timeout_is_rejected() -> None:
    """A non-positive timeout is a configuration error raised before anything starts."""
    from lifespan_di.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="startup_timeout=0"):
        container_lifespan(containers.DynamicContainer(), startup_timeout=0)


@pytest.mark.parametrize(
    "timeout", [10**400, float("inf"), float("nan")], ids=["huge", "inf", "nan"]
)
def test_timeout_the_event_loop_cannot_use_is_rejected(timeout: float) -> None:
    """A timeout that is not finite or too large for a float is refused when the lifespan is created, not at startup."""
    from lifespan_di.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="finite"):
        container_lifespan(containers.DynamicContainer(), shutdown_timeout=timeout)
