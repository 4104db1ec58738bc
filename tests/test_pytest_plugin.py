"""The pytest plugin, used by a sample project run in a pytest subprocess."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lifespan_di import State
from lifespan_di.core.lifespan import RUNTIME
from lifespan_di.testing import LifespanAsyncClient, LifespanClient

pytest_plugins = ["pytester"]

TIMEOUT = 120  # seconds for one pytest subprocess

SETTINGS = """
SECRET_KEY = "sample"
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = ["lifespan_di"]
MIDDLEWARE = ["lifespan_di.middleware.LifespanStateMiddleware"]
ROOT_URLCONF = "sample_app"
DATABASES = {}
USE_TZ = True
LIFESPAN_DI = {"CONTAINER": "sample_app.Container"}
"""

APP = """
import asyncio
import os
from contextlib import asynccontextmanager

from dependency_injector import containers, providers
from django.http import JsonResponse
from django.urls import path

from lifespan_di import Provide, inject


@asynccontextmanager
async def loop_resource():
    with open(os.environ["SAMPLE_RECORD"], "a") as file:
        file.write("start\\n")
    yield asyncio.get_running_loop()
    with open(os.environ["SAMPLE_RECORD"], "a") as file:
        file.write("stop\\n")


class Container(containers.DeclarativeContainer):
    loop = providers.Resource(loop_resource)


@inject
async def where(request, loop=Provide["loop"]):
    return JsonResponse({"same_loop": loop is asyncio.get_running_loop()})


urlpatterns = [path("where/", where)]
"""

TESTS = """
import asyncio

import pytest


def test_sync_client(lifespan_client, lifespan):
    answers = [lifespan_client.get("/where/").json() for _ in range(3)]
    assert answers == [{"same_loop": True}] * 3
    assert "loop" in lifespan


async def test_async_client(async_lifespan_client, lifespan):
    response = await async_lifespan_client.get("/where/")
    assert response.json() == {"same_loop": True}
    assert (lifespan.loop is asyncio.get_running_loop()) is OWN_LOOP


async def test_both_clients(lifespan_client, async_lifespan_client):
    response = await async_lifespan_client.get("/where/")
    assert response.json() == lifespan_client.get("/where/").json()


@pytest.mark.asyncio(loop_scope="module")
async def test_shared_loop(async_lifespan_client, lifespan):
    response = await async_lifespan_client.get("/where/")
    assert response.json() == {"same_loop": True}
    assert lifespan.loop is not asyncio.get_running_loop()
"""

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

DJANGO = ("-p", "pytest_django", "--ds=sample_settings", "-p", "no:cacheprovider")


@pytest.fixture
def record(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = pytester.path / "record.txt"
    monkeypatch.setenv("SAMPLE_RECORD", str(path))
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    pytester.makeini(INI)
    pytester.makepyfile(sample_settings=SETTINGS, sample_app=APP)
    return path


def test_function_scope_runs_a_lifespan_per_test(
    pytester: pytest.Pytester, record: Path
) -> None:
    """By default each test gets its own lifespan, on the async test's own loop if it has one."""
    pytester.makepyfile(test_sample=TESTS.replace("OWN_LOOP", "True"))

    result = pytester.runpytest_subprocess(*DJANGO, timeout=TIMEOUT)

    result.assert_outcomes(passed=4)
    assert record.read_text().split() == ["start", "stop"] * 4


def test_session_scope_runs_one_lifespan(
    pytester: pytest.Pytester, record: Path
) -> None:
    """With lifespan_di_scope = session one lifespan on a private loop serves every test."""
    pytester.makepyfile(test_sample=TESTS.replace("OWN_LOOP", "False"))

    result = pytester.runpytest_subprocess(
        *DJANGO, "-o", "lifespan_di_scope=session", timeout=TIMEOUT
    )

    result.assert_outcomes(passed=4)
    assert record.read_text().split() == ["start", "stop"]


def test_unknown_scope_is_a_usage_error(
    pytester: pytest.Pytester, record: Path
) -> None:
    """An unknown lifespan_di_scope stops pytest with a message naming the choices."""
    pytester.makepyfile(test_sample="def test_nothing(): pass")

    result = pytester.runpytest_subprocess(
        *DJANGO, "-o", "lifespan_di_scope=forever", timeout=TIMEOUT
    )

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'forever' is not a lifespan_di scope*"])


@pytest.mark.parametrize(
    "args",
    [("-p", "no:django"), ("-p", "pytest_django")],
    ids=["without-pytest-django", "without-settings"],
)
def test_inert_without_django(
    pytester: pytest.Pytester, record: Path, args: tuple[str, ...]
) -> None:
    """Without pytest-django or Django settings the plugin defines no fixture and breaks nothing."""
    pytester.makepyfile(
        test_sample="def test_plain(): pass\ndef test_wants(lifespan): pass"
    )

    result = pytester.runpytest_subprocess(
        *args, "-p", "no:cacheprovider", timeout=TIMEOUT
    )

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'lifespan' not found*"])
    assert not record.exists()


class TestFixturesInThisSuite:
    """The plugin is installed, so this suite's own tests can use its fixtures."""

    def test_lifespan_is_the_running_state(self, lifespan: State) -> None:
        """The lifespan fixture is the state of the lifespan running for the test."""
        active = RUNTIME.active

        counter = lifespan.counter

        assert active is not None
        assert active.state["counter"] is counter
        assert not counter.closed

    def test_sync_client_serves_from_the_lifespan(
        self, lifespan_client: LifespanClient, lifespan: State
    ) -> None:
        """lifespan_client's requests get the resources of the lifespan fixture."""
        responses = [lifespan_client.get("/async-inject/") for _ in range(3)]

        assert {response.json()["client"] for response in responses} == {
            id(lifespan.httpx_client)
        }

    async def test_async_test_owns_the_lifespan_on_its_loop(
        self, async_lifespan_client: LifespanAsyncClient, lifespan: State
    ) -> None:
        """In an async test the lifespan runs on the test's own loop."""
        response = await async_lifespan_client.get("/async-inject/")

        assert response.json()["client"] == id(lifespan.httpx_client)
        assert async_lifespan_client._app.loop is asyncio.get_running_loop()

    async def test_both_clients_share_one_lifespan(
        self,
        lifespan_client: LifespanClient,
        async_lifespan_client: LifespanAsyncClient,
    ) -> None:
        """With both clients in one async test, the async one sends its requests to the other's loop."""
        from_async = await async_lifespan_client.get("/async-inject/")

        from_sync = lifespan_client.get("/async-inject/")

        assert from_async.json()["client"] == from_sync.json()["client"]
        assert async_lifespan_client._app.loop is not asyncio.get_running_loop()
