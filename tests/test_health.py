"""Health endpoints: live/, ready/ and the per-resource checks of HEALTH_CHECKS."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import pytest
from dependency_injector import containers, providers
from django.conf import settings
from django.core.checks import run_checks
from django.test import AsyncClient, override_settings
from django.test.client import AsyncRequestFactory
from django.urls import reverse

from lifespan_di import LifespanASGIHandler, container_lifespan
from lifespan_di.conf import get_settings
from lifespan_di.core.lifespan import LIFESPAN_STATE_KEY
from lifespan_di.exceptions import ConfigurationError
from lifespan_di.health import ready
from lifespan_di.testing import LifespanAsyncClient
from tests.project import health_containers as hc

READY = "/ops/health/ready/"
LIVE = "/ops/health/live/"
URLS = "tests.project.health_urls"


def health_settings(**extra: Any) -> dict[str, Any]:
    return {**settings.LIFESPAN_DI, **extra}


@pytest.fixture(autouse=True)
def health_urls() -> Iterator[None]:
    with override_settings(ROOT_URLCONF=URLS):
        yield


@asynccontextmanager
async def serving(
    container: containers.Container | None = None,
) -> AsyncIterator[LifespanAsyncClient]:
    """A client whose application runs ``container``'s lifespan (default: Health)."""
    application = LifespanASGIHandler(container=container or hc.Health())
    async with LifespanAsyncClient(application=application) as client:
        yield client


def probes(client: LifespanAsyncClient) -> dict[str, hc.Probe]:
    state = client.state
    return {name: state[name] for name in ("db", "cache", "search", "infra.queue")}


class TestLive:
    async def test_live_answers_under_the_prefix(self) -> None:
        """live/ answers 200 under the prefix the project includes lifespan_di.urls at."""
        async with serving() as client:
            response = await client.get(LIVE)

        assert response.status_code == 200
        assert response.json() == {"status": "alive"}
        assert reverse("lifespan_di:live") == LIVE

    async def test_live_touches_no_resource(self) -> None:
        """live/ stays 200 while a check fails, and runs no check."""
        async with serving() as client:
            probes(client)["db"].error = ConnectionError("down")
            response = await client.get(LIVE)
            calls = probes(client)["db"].calls

        assert response.status_code == 200
        assert calls == 0

    async def test_live_without_a_lifespan(self) -> None:
        """live/ answers 200 even when no lifespan runs (daphne, WSGI)."""
        response = await AsyncClient().get(LIVE)

        assert response.status_code == 200


class TestReady:
    async def test_ready_when_every_check_passes(self) -> None:
        """ready/ answers 200 listing each named resource: checked ones with latency, others as started."""
        async with serving() as client:
            response = await client.get(READY)

        body = response.json()
        assert response.status_code == 200
        assert body["status"] == "ready"
        assert body["lifespan"] == "running"
        assert list(body["resources"]) == [
            "db",
            "cache",
            "search",
            "plain",
            "infra.queue",
        ]
        assert body["resources"]["plain"] == {"status": "started"}
        for name in ("db", "cache", "search", "infra.queue"):
            entry = body["resources"][name]
            assert entry["status"] == "ok"
            assert isinstance(entry["latency_ms"], float)
        assert reverse("lifespan_di:ready") == READY

    async def test_resources_without_checks(self) -> None:
        """A container without HEALTH_CHECKS is ready once started, each resource reported started."""
        async with serving(hc.Unchecked()) as client:
            response = await client.get(READY)

        assert response.status_code == 200
        assert response.json()["resources"] == {"db": {"status": "started"}}

    async def test_not_ready_without_a_lifespan(self) -> None:
        """ready/ answers 503 when no lifespan runs in the process."""
        response = await AsyncClient().get(READY)

        assert response.status_code == 503
        assert response.json() == {
            "status": "not ready",
            "lifespan": "not running",
            "resources": {},
        }

    async def test_not_ready_before_startup_completes(self) -> None:
        """ready/ answers 503 while the resources are still starting."""
        gate = asyncio.Event()

        @asynccontextmanager
        async def slow_start() -> AsyncIterator[str]:
            await gate.wait()
            yield "slow"

        class Slow(containers.DeclarativeContainer):
            slow = providers.Resource(slow_start)

        lifespan = container_lifespan(Slow())
        starting = asyncio.ensure_future(lifespan.startup())
        await asyncio.sleep(0.01)

        during = await ready(AsyncRequestFactory().get(READY))
        gate.set()
        await asyncio.wait_for(starting, 5)
        after = await ready(AsyncRequestFactory().get(READY))
        await lifespan.shutdown()

        assert during.status_code == 503
        assert after.status_code == 200

    async def test_not_ready_once_shutdown_began(self) -> None:
        """ready/ answers 503 as soon as shutdown begins, before the resources are closed."""
        gate = asyncio.Event()

        @asynccontextmanager
        async def slow_stop() -> AsyncIterator[str]:
            yield "slow"
            await gate.wait()

        class Slow(containers.DeclarativeContainer):
            slow = providers.Resource(slow_stop)

        lifespan = container_lifespan(Slow())
        await lifespan.startup()
        before = await ready(AsyncRequestFactory().get(READY))
        stopping = asyncio.ensure_future(lifespan.shutdown())
        await asyncio.sleep(0.01)

        during = await ready(AsyncRequestFactory().get(READY))
        gate.set()
        await asyncio.wait_for(stopping, 5)

        assert before.status_code == 200
        assert during.status_code == 503
        assert during["Content-Type"] == "application/json"

    async def test_judges_the_lifespan_of_the_request(self) -> None:
        """ready/ judges the lifespan in the request's scope, not another one running in the process."""
        stopped = container_lifespan(hc.Unchecked())
        await stopped.startup()
        await stopped.shutdown()
        request = AsyncRequestFactory().get(READY)
        request.scope["state"] = {LIFESPAN_STATE_KEY: stopped}

        async with container_lifespan(hc.Unchecked()):
            response = await ready(request)

        assert response.status_code == 503

    async def test_works_without_the_state_middleware(self) -> None:
        """ready/ needs no LifespanStateMiddleware."""
        with override_settings(MIDDLEWARE=[]):
            async with serving() as client:
                response = await client.get(READY)

        assert response.status_code == 200

    async def test_head_runs_the_checks_and_post_is_refused(self) -> None:
        """HEAD answers like GET without a body; POST answers 405 allowing GET and HEAD."""
        async with serving() as client:
            probes(client)["db"].error = ConnectionError("down")
            head = await client.head(READY)
            post = await client.post(READY)
            live_post = await client.post(LIVE)

        assert head.status_code == 503
        assert head.content == b""
        assert post.status_code == 405
        assert post["Allow"] == "GET, HEAD"
        assert live_post.status_code == 405

    async def test_never_cached(self) -> None:
        """Both endpoints tell caches not to store the answer."""
        async with serving() as client:
            responses = [await client.get(LIVE), await client.get(READY)]

        for response in responses:
            assert "no-cache" in response["Cache-Control"]
            assert "no-store" in response["Cache-Control"]


class TestChecks:
    async def test_raising_check_fails_without_details(self) -> None:
        """A check that raises makes ready/ 503; with DEBUG off the body holds no error text."""
        async with serving() as client:
            probes(client)["cache"].error = ConnectionError("password=hunter2")
            response = await client.get(READY)

        body = response.json()
        assert response.status_code == 503
        assert body["status"] == "not ready"
        assert body["resources"]["cache"]["status"] == "failed"
        assert set(body["resources"]["cache"]) == {"status", "latency_ms"}
        assert body["resources"]["db"]["status"] == "ok"
        assert b"hunter2" not in response.content
        assert b"ConnectionError" not in response.content

    async def test_debug_shows_why_a_check_failed(self) -> None:
        """With DEBUG on, a failed check's entry says what it raised."""
        with override_settings(DEBUG=True):
            async with serving() as client:
                probes(client)["db"].error = ConnectionError("refused")
                response = await client.get(READY)

        assert response.status_code == 503
        assert response.json()["resources"]["db"]["error"] == (
            "the check raised ConnectionError('refused')"
        )

    async def test_check_returning_false_fails(self) -> None:
        """A check that returns False fails; None counts as a pass."""
        async with serving() as client:
            probes(client)["db"].result = None
            probes(client)["search"].result = False
            response = await client.get(READY)

        resources = response.json()["resources"]
        assert response.status_code == 503
        assert resources["db"]["status"] == "ok"
        assert resources["search"]["status"] == "failed"

    async def test_slow_check_times_out(self) -> None:
        """A check slower than HEALTH_CHECK_TIMEOUT is reported as timeout, and ready/ answers in time."""
        with override_settings(LIFESPAN_DI=health_settings(HEALTH_CHECK_TIMEOUT=0.2)):
            async with serving() as client:
                probes(client)["db"].delay = 10
                began = time.perf_counter()
                response = await client.get(READY)
                elapsed = time.perf_counter() - began

        entry = response.json()["resources"]["db"]
        assert response.status_code == 503
        assert entry == {"status": "timeout", "latency_ms": 200.0}
        assert elapsed < 2

    async def test_checks_run_concurrently(self) -> None:
        """Three checks of 0.4 s each (async, sync, sync) finish together, not one after another."""
        async with serving() as client:
            for name in ("db", "cache", "search"):
                probes(client)[name].delay = 0.4
            began = time.perf_counter()
            response = await client.get(READY)
            elapsed = time.perf_counter() - began

        assert response.status_code == 200
        assert elapsed < 0.9  # 1.2 s if they ran one after another

    async def test_sync_checks_run_in_a_thread_async_ones_on_the_loop(self) -> None:
        """A sync check runs in a worker thread; an async check runs on the event loop."""
        async with serving() as client:
            await client.get(READY)
            db, cache = probes(client)["db"], probes(client)["cache"]

        assert db.threads == [threading.get_ident()]
        assert cache.threads != [threading.get_ident()]
        assert len(cache.threads) == 1

    async def test_hung_sync_check_is_joined_not_restarted(self) -> None:
        """A sync check still running from an earlier probe is waited for again, not run in a second thread."""
        with override_settings(LIFESPAN_DI=health_settings(HEALTH_CHECK_TIMEOUT=0.1)):
            async with serving() as client:
                cache = probes(client)["cache"]
                cache.gate = threading.Event()
                first = await client.get(READY)
                second = await client.get(READY)
                calls_while_hung = cache.calls
                cache.gate.set()
                third = await client.get(READY)
                # A probe arriving just as the thread ends may still join its run.
                deadline = time.perf_counter() + 5
                while cache.calls < 2 and time.perf_counter() < deadline:
                    await asyncio.sleep(0.01)
                    third = await client.get(READY)

        assert first.json()["resources"]["cache"]["status"] == "timeout"
        assert second.json()["resources"]["cache"]["status"] == "timeout"
        assert calls_while_hung == 1
        assert third.status_code == 200
        assert cache.calls == 2

    async def test_nested_container_declares_its_own_checks(self) -> None:
        """A nested container's HEALTH_CHECKS check its resources, reported under the dotted name."""
        async with serving() as client:
            queue = probes(client)["infra.queue"]
            queue.result = False
            response = await client.get(READY)

        assert response.json()["resources"]["infra.queue"]["status"] == "failed"
        assert queue.calls == 1

    async def test_check_named_by_an_alias(self) -> None:
        """A check keyed by a second name of a resource is reported under its first name."""

        class Aliased(containers.DeclarativeContainer):
            HEALTH_CHECKS: ClassVar = {"primary": hc.ping_async}
            db = providers.Resource(hc.async_probe, "db")
            primary = db

        async with serving(Aliased()) as client:
            response = await client.get(READY)
            calls = client.state["db"].calls

        assert response.json()["resources"] == {
            "db": {"status": "ok", "latency_ms": pytest.approx(0, abs=1000)}
        }
        assert calls == 1

    async def test_invalid_checks_fail_the_startup(self) -> None:
        """A HEALTH_CHECKS naming no resource fails the lifespan startup with a message naming it."""
        with pytest.raises(ConfigurationError, match="'dbb'"):
            async with serving(hc.Broken()):
                pass

    async def test_invalid_checks_fail_the_request_loudly(self) -> None:
        """Reached without the handler's startup, a HEALTH_CHECKS naming no resource raises ConfigurationError instead of answering."""
        async with container_lifespan(hc.Broken()):
            with pytest.raises(ConfigurationError, match="'dbb'"):
                await ready(AsyncRequestFactory().get(READY))


class TestLogging:
    async def test_failures_logged_once_per_change(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failing check logs one WARNING however often it is probed, INFO on recovery, and no request error."""
        caplog.set_level(logging.INFO)
        async with serving() as client:
            db = probes(client)["db"]
            db.error = ConnectionError("refused")
            for _ in range(3):
                await client.get(READY)
            db.error = None
            await client.get(READY)
            await client.get(READY)

        health = [r for r in caplog.records if r.name == "lifespan_di.health"]
        assert [(r.levelname, r.getMessage()) for r in health] == [
            (
                "WARNING",
                "Health check of resource 'db' failed: the check raised "
                "ConnectionError('refused')",
            ),
            ("INFO", "Health check of resource 'db' passes again."),
        ]
        assert health[0].exc_info is not None
        assert not [r for r in caplog.records if r.name == "django.request"]


class TestConfiguration:
    def test_health_check_timeout_is_read(self) -> None:
        """HEALTH_CHECK_TIMEOUT defaults to 1 s and is read from the setting."""
        default = get_settings().health_check_timeout
        with override_settings(LIFESPAN_DI=health_settings(HEALTH_CHECK_TIMEOUT=2.5)):
            configured = get_settings().health_check_timeout

        assert default == 1.0
        assert configured == 2.5

    @pytest.mark.parametrize("value", [None, 0, -1, "1", True])
    def test_invalid_health_check_timeout(self, value: object) -> None:
        """A HEALTH_CHECK_TIMEOUT that is not a positive number (None included) is E012."""
        with override_settings(LIFESPAN_DI=health_settings(HEALTH_CHECK_TIMEOUT=value)):
            errors = [m.msg for m in run_checks() if m.id == "lifespan_di.E012"]

        assert errors == [f"LIFESPAN_DI['HEALTH_CHECK_TIMEOUT'] is {value!r}."]

    def test_broken_health_checks_are_e008(self) -> None:
        """Each mistake in HEALTH_CHECKS is its own E008: unknown name, not a resource, not callable."""
        with override_settings(LIFESPAN_DI={"CONTAINER": hc.Broken}):
            errors = e008()

        assert len(errors) == 4
        assert (
            "Cannot use the health check 'dbb' of Broken.HEALTH_CHECKS: it names no "
            "provider. Use the name of one of its resources: 'db'." in errors
        )
        assert any(
            "'factory'" in e and "it is a Factory, not a Resource" in e for e in errors
        )
        assert any("'not callable' is not callable" in e for e in errors)
        assert any("health check 3 " in e for e in errors)

    @pytest.mark.parametrize(
        ("container", "text"),
        [
            (hc.NotAMapping, "NotAMapping.HEALTH_CHECKS: it is a list, not a mapping"),
            (hc.Twice, "resource 'infra.queue' already has one in Twice.HEALTH_CHECKS"),
        ],
    )
    def test_malformed_health_checks(self, container: type, text: str) -> None:
        """HEALTH_CHECKS that is not a mapping, or checks one resource twice, is E008."""
        with override_settings(LIFESPAN_DI={"CONTAINER": container}):
            errors = e008()

        assert len(errors) == 1
        assert text in errors[0]

    def test_valid_health_checks_pass(self) -> None:
        """A container whose HEALTH_CHECKS are all valid raises no E008."""
        with override_settings(LIFESPAN_DI={"CONTAINER": hc.Health}):
            assert e008() == []


def e008() -> list[str]:
    return [m.msg for m in run_checks() if m.id == "lifespan_di.E008"]
