"""The pytest plugin, used by a sample project run in a pytest subprocess."""

from __future__ import annotations

import asyncio
import re
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
REPO_ROOT = Path(__file__).resolve().parent.parent

ASYNC_TEST = """
async def test_async(async_lifespan_client, lifespan):
    response = await async_lifespan_client.get("/where/")
    assert response.json() == {"same_loop": True}
"""

# Where pytest-asyncio is not installed, importing it fails.
NOT_INSTALLED = "raise ImportError('No module named pytest_asyncio')"


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


class TestAsyncTestsNothingAwaits:
    """An async test that no plugin would await is refused before the lifespan starts."""

    @pytest.mark.parametrize(
        ("ini", "args", "shadow", "why"),
        [
            pytest.param(
                "[pytest]\nasyncio_default_fixture_loop_scope = function\n",
                (),
                None,
                "pytest-asyncio runs in strict mode, where it awaits only the tests "
                "marked `@pytest.mark.asyncio`. Mark the test, or set "
                "`asyncio_mode = auto` in your pytest configuration.",
                id="strict-mode-unmarked",
            ),
            pytest.param(
                "[pytest]\n",
                ("-p", "no:asyncio"),
                None,
                "pytest-asyncio is installed but disabled (`-p no:asyncio`), so "
                "nothing would await it. Remove `-p no:asyncio` from the command "
                "line or the pytest configuration.",
                id="disabled",
            ),
            pytest.param(
                "[pytest]\n",
                ("-p", "no:asyncio"),
                NOT_INSTALLED,
                "pytest-asyncio is not installed, so nothing would await it. "
                "Install it (`pip install pytest-asyncio`) and set "
                "`asyncio_mode = auto` in your pytest configuration.",
                id="not-installed",
            ),
        ],
    )
    def test_the_error_names_what_is_missing(
        self,
        pytester: pytest.Pytester,
        record: Path,
        ini: str,
        args: tuple[str, ...],
        shadow: str | None,
        why: str,
    ) -> None:
        """The test errors at setup with the missing piece, and no resource starts."""
        pytester.makeini(ini)
        if shadow is not None:
            pytester.makepyfile(pytest_asyncio=shadow)
        pytester.makepyfile(test_sample=ASYNC_TEST)

        result = pytester.runpytest_subprocess(*DJANGO, *args, timeout=TIMEOUT)

        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                "Cannot start the lifespan of 'async_lifespan_client', 'lifespan' "
                f"for the async test 'test_async': {why} "
                'See "Async tests" in docs/testing.md.'
            ]
        )
        assert not record.exists()

    def test_a_marked_test_runs_in_strict_mode(
        self, pytester: pytest.Pytester, record: Path
    ) -> None:
        """In strict mode, @pytest.mark.asyncio is all an async test needs."""
        pytester.makeini(
            "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
            "filterwarnings = error\n"
        )
        marked = "import pytest\n\n" + ASYNC_TEST.replace(
            "async def", "@pytest.mark.asyncio\nasync def"
        )
        pytester.makepyfile(test_sample=marked)

        result = pytester.runpytest_subprocess(*DJANGO, timeout=TIMEOUT)

        result.assert_outcomes(passed=1)
        assert record.read_text().split() == ["start", "stop"]


class TestDocsAsyncTest:
    """docs/testing.md's async test runs as written, with the configuration it states."""

    @staticmethod
    def docs_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> str:
        """Write the page's configuration and its first async test; return the config."""
        page = (REPO_ROOT / "docs" / "testing.md").read_text()
        section = page.split("## Async tests", 1)[1]
        config = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
        include = re.search(r'--8<-- "([^":]+):(\w+)"', page)
        assert config is not None
        assert include is not None
        path, name = include.groups()
        source = (REPO_ROOT / path).read_text()
        header = source.split("# --8<--", 1)[0]  # the module's imports
        body = source.split(f"# --8<-- [start:{name}]", 1)[1]
        body = body.split(f"# --8<-- [end:{name}]", 1)[0]
        monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
        monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
        pytester.makeconftest('pytest_plugins = ["example_app.conftest"]')
        pytester.makepyfile(test_docs=header + body)
        return config.group(1).replace("myproject.settings", "example_app.settings")

    def test_it_passes_with_the_stated_configuration(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the page's pytest configuration, its async test passes."""
        config = self.docs_project(pytester, monkeypatch)
        pytester.makepyprojecttoml(config)

        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-W", "error", timeout=TIMEOUT
        )

        result.assert_outcomes(passed=1)

    def test_without_auto_mode_it_says_so(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without asyncio_mode = "auto", the same test errors naming strict mode."""
        config = self.docs_project(pytester, monkeypatch)
        pytester.makepyprojecttoml(config.replace('asyncio_mode = "auto"\n', ""))

        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", timeout=TIMEOUT
        )

        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            ["Cannot start the lifespan of 'async_lifespan_client' for the async "
             "test 'test_quote_comes_from_the_upstream': pytest-asyncio runs in "
             "strict mode*"]
        )  # fmt: skip


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
