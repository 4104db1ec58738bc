"""The class and the instance: class-level providers answer from the running instance.

Every test here that calls a class-level provider during a lifespan fails without
the class-level overrides: the call started a second copy of the resource.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from dependency_injector import containers, providers

from lifespan_di import container_lifespan, request_scope
from lifespan_di.exceptions import AlreadyRunningError, LifespanNotRunningError
from lifespan_di.providers import RequestResource
from lifespan_di.testing import override
from tests.recorder import Handle, Recorder

TIMEOUT = 5


def app_container(recorder: Recorder) -> type[containers.DeclarativeContainer]:
    """An async pool, a sync counter, and providers built on them."""

    class Container(containers.DeclarativeContainer):
        pool = providers.Resource(recorder.async_resource("pool"))
        counter = providers.Resource(recorder.sync_resource("counter"))
        service = providers.Factory(dict, pool=pool)
        tally = providers.Factory(dict, counter=counter)
        shared = providers.Singleton(dict, counter=counter)
        plain = providers.Factory(dict)

    return Container


class TestAppResources:
    async def test_awaiting_the_class_provider_gives_the_running_value(
        self, recorder: Recorder
    ) -> None:
        """`await Container.pool()` and `.async_()` give the started pool; nothing else starts."""
        container_class = app_container(recorder)

        async with container_lifespan(container_class()) as state:
            called = await asyncio.wait_for(container_class.pool(), TIMEOUT)
            awaited = await asyncio.wait_for(container_class.pool.async_(), TIMEOUT)

        assert called is state["pool"]
        assert awaited is state["pool"]
        assert sorted(recorder.started) == ["counter", "pool"]

    async def test_a_sync_call_gives_the_running_value(
        self, recorder: Recorder
    ) -> None:
        """A sync resource called on the class, and an async one called from a thread, give the started values."""
        container_class = app_container(recorder)

        async with container_lifespan(container_class()) as state:
            counter = container_class.counter()
            pool = await asyncio.wait_for(
                asyncio.to_thread(container_class.pool), TIMEOUT
            )

        assert counter is state["counter"]
        assert pool is state["pool"]
        assert sorted(recorder.started) == ["counter", "pool"]

    async def test_providers_built_on_resources_use_the_running_values(
        self, recorder: Recorder
    ) -> None:
        """A Factory or Singleton over a resource, called on the class, is built on the started values."""
        container_class = app_container(recorder)
        container = container_class()

        async with container_lifespan(container) as state:
            service = await asyncio.wait_for(container_class.service(), TIMEOUT)
            tally = container_class.tally()
            shared = container_class.shared()

            assert shared is container.shared()

        assert service["pool"] is state["pool"]
        assert tally["counter"] is state["counter"]
        assert sorted(recorder.started) == ["counter", "pool"]

    async def test_after_shutdown_the_class_is_dependency_injectors_again(
        self, recorder: Recorder
    ) -> None:
        """After shutdown a class-level call never returns a closed value: the class starts its own copy, as without lifespan_di."""
        container_class = app_container(recorder)

        async with container_lifespan(container_class()):
            during: Handle = container_class.counter()
        after: Handle = container_class.counter()
        after_open = not after.closed
        container_class.counter.shutdown()

        assert during.closed
        assert after is not during
        assert after_open
        assert sorted(recorder.started) == ["counter", "counter", "pool"]
        assert container_class.counter.overridden == ()

    async def test_a_second_lifespan_after_the_first_answers_from_its_instance(
        self, recorder: Recorder
    ) -> None:
        """A new instance started after the first lifespan ended is the one the class answers from."""
        container_class = app_container(recorder)
        async with container_lifespan(container_class()) as first:
            first_pool = await asyncio.wait_for(container_class.pool(), TIMEOUT)

        async with container_lifespan(container_class()) as second:
            second_pool = await asyncio.wait_for(container_class.pool(), TIMEOUT)

        assert first_pool is first["pool"]
        assert second_pool is second["pool"]
        assert second_pool is not first_pool
        assert recorder.started.count("pool") == 2

    async def test_overlapping_lifespans_of_one_class(self, recorder: Recorder) -> None:
        """With two instances of one class running, the class answers from the newer, then from the one left, then from neither."""
        container_class = app_container(recorder)
        first, second = container_class(), container_class()
        first_lifespan = container_lifespan(first)
        first_state = await first_lifespan.startup()

        async with container_lifespan(second) as second_state:
            during_both = container_class.counter()
            await first_lifespan.shutdown()
            during_second = container_class.counter()

        assert during_both is second_state["counter"]
        assert during_both is not first_state["counter"]
        assert during_second is second_state["counter"]
        assert container_class.counter.overridden == ()
        assert container_class.counter.is_async_mode_undefined()

    async def test_another_instance_while_it_runs_is_refused(
        self, recorder: Recorder
    ) -> None:
        """Creating another instance of the class while its lifespan runs raises, naming the way out."""
        container_class = app_container(recorder)

        async with container_lifespan(container_class()):
            with pytest.raises(AlreadyRunningError, match=r"get_container\(\)"):
                container_class()

        assert container_class().pool.overridden == ()

    async def test_a_class_call_during_shutdown_is_refused(
        self, recorder: Recorder
    ) -> None:
        """A teardown that calls a class-level provider gets an error, not a new copy of a closed resource."""
        seen: list[BaseException] = []

        async def late_user() -> AsyncIterator[None]:
            yield
            try:
                Container.pool()
            except LifespanNotRunningError as error:
                seen.append(error)

        class Container(containers.DeclarativeContainer):
            pool = providers.Resource(recorder.async_resource("pool"))
            late = providers.Resource(late_user)

        instance = Container()

        async with container_lifespan(instance):
            pass

        assert len(seen) == 1
        assert "shutting down" in str(seen[0])
        assert recorder.started == ["pool"]

    async def test_a_dynamic_container_leaves_classes_alone(
        self, recorder: Recorder
    ) -> None:
        """A lifespan of a DynamicContainer overrides nothing."""
        container_class = app_container(recorder)
        dynamic = containers.DynamicContainer()
        dynamic.pool = container_class.pool

        async with container_lifespan(dynamic):
            overridden = container_class.pool.overridden

        assert overridden == ()

    async def test_an_instance_with_providers_its_class_lacks(
        self, recorder: Recorder
    ) -> None:
        """An instance given an extra resource after creation starts, and its class still answers from it."""
        container_class = app_container(recorder)
        container = container_class()
        container.set_provider(
            "extra", providers.Resource(recorder.sync_resource("extra"))
        )

        async with container_lifespan(container) as state:
            counter = container_class.counter()

        assert counter is state["counter"]
        assert sorted(recorder.started) == ["counter", "extra", "pool"]

    async def test_providers_that_refuse_an_answer_are_left_alone(
        self, recorder: Recorder
    ) -> None:
        """An abstract factory and an aggregate built on a resource do not stop the lifespan from starting."""

        class Container(containers.DeclarativeContainer):
            pool = providers.Resource(recorder.async_resource("pool"))
            abstract = providers.AbstractFactory(dict)
            both = providers.Aggregate(first=providers.Factory(dict, pool=pool))

        container = Container()
        container.abstract.override(providers.Factory(dict, pool=container.pool))

        async with container_lifespan(container) as state:
            built = container.abstract()

        assert built["pool"] is state["pool"]
        assert recorder.started == ["pool"]


class TestRequestResources:
    async def test_class_async_gives_the_requests_instance(
        self, recorder: Recorder
    ) -> None:
        """`await Container.session.async_()` in a request gives the request's instance, closed with the request."""
        opened: list[Handle] = []

        async def open_session(pool: Handle) -> AsyncIterator[Handle]:
            session = Handle("session", {"pool": pool})
            opened.append(session)
            yield session
            session.closed = True

        class Container(containers.DeclarativeContainer):
            pool = providers.Resource(recorder.async_resource("pool"))
            session = RequestResource(open_session, pool=pool)

        container = Container()

        async with container_lifespan(container) as state:
            async with request_scope():
                from_class = await asyncio.wait_for(Container.session.async_(), TIMEOUT)
                from_instance = await asyncio.wait_for(
                    container.session.async_(), TIMEOUT
                )
                open_in_request = not from_class.closed
            closed_after_request = from_class.closed

        assert from_class is from_instance
        assert open_in_request
        assert closed_after_request
        assert from_class.deps["pool"] is state["pool"]
        assert opened == [from_class]
        assert recorder.started == ["pool"]

    async def test_a_sync_class_call_in_a_thread_of_the_request(self) -> None:
        """A sync request resource called on the class from the request's thread is the request's instance."""
        opened: list[object] = []

        def open_unit() -> Iterator[object]:
            unit = object()
            opened.append(unit)
            yield unit

        class Container(containers.DeclarativeContainer):
            unit = RequestResource(open_unit)

        container = Container()

        async with container_lifespan(container), request_scope():
            from_instance = await asyncio.wait_for(container.unit.async_(), TIMEOUT)
            from_class = await asyncio.wait_for(
                asyncio.to_thread(Container.unit), TIMEOUT
            )

        assert from_class is from_instance
        assert len(opened) == 1


class TestOverrides:
    async def test_override_providers_of_the_instance_reach_class_calls(
        self, recorder: Recorder
    ) -> None:
        """`container.override_providers(...)` on the running instance is what the class answers."""
        container_class = app_container(recorder)
        container = container_class()
        fake = object()

        async with container_lifespan(container):
            with container.override_providers(counter=fake):
                from_class = container_class.counter()

        assert from_class is fake
        assert "counter" in recorder.started

    async def test_testing_override_reaches_class_calls(
        self, recorder: Recorder
    ) -> None:
        """`lifespan_di.testing.override(Container.counter, fake)` reaches class-level calls."""
        container_class = app_container(recorder)
        fake = object()

        async with container_lifespan(container_class()):
            with override(container_class.counter, fake):
                from_class = container_class.counter()

        assert from_class is fake

    async def test_a_class_override_made_while_running_outlives_it(
        self, recorder: Recorder
    ) -> None:
        """A class-level override made during the lifespan stays after it; only lifespan_di's own is removed."""
        container_class = app_container(recorder)
        fake = providers.Object("fake")

        async with container_lifespan(container_class()):
            container_class.counter.override(fake)
            during = container_class.counter()
        try:
            after = container_class.counter()
            overridden = container_class.counter.overridden
        finally:
            container_class.counter.reset_override()

        assert (during, after) == ("fake", "fake")
        assert overridden == (fake,)


class TestNestedContainers:
    async def test_a_nested_containers_resource_on_the_class(
        self, recorder: Recorder
    ) -> None:
        """`Container.infra.cache()` gives the running instance's cache; it starts once."""

        class Infra(containers.DeclarativeContainer):
            cache = providers.Resource(recorder.async_resource("cache"))

        class Container(containers.DeclarativeContainer):
            infra = providers.Container(Infra)
            service = providers.Factory(dict, cache=infra.cache)

        async with container_lifespan(Container()) as state:
            cache = await asyncio.wait_for(Container.infra.cache(), TIMEOUT)
            service: dict[str, Any] = await asyncio.wait_for(
                Container.service(), TIMEOUT
            )

        assert cache is state["infra.cache"]
        assert service["cache"] is cache
        assert recorder.started == ["cache"]


class TestWithoutLifespan:
    def test_class_calls_behave_as_dependency_injectors(
        self, recorder: Recorder
    ) -> None:
        """With no lifespan running, a class-level call starts the class's own copy, as dependency-injector does."""
        container_class = app_container(recorder)

        counter = container_class.counter()
        container_class.counter.shutdown()

        assert counter.closed
        assert recorder.events == ["start:counter", "stop:counter"]
