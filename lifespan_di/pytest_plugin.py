"""pytest fixtures that run the project's lifespan: ``lifespan``, ``lifespan_client``,
``async_lifespan_client``.

Registered through the ``pytest11`` entry point. The fixtures exist only when
pytest-django is active and Django settings are configured; anywhere else the
plugin does nothing. The test clients (and ``django.test``) are imported when a
fixture first runs. pytest imports this module, and so the ``lifespan_di``
package, before pytest-cov starts measuring: measure this package's own coverage
with ``coverage run -m pytest`` (pytest-cov issue #635).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - run in a subprocess by the tests
    pytest_asyncio = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from lifespan_di.state import State
    from lifespan_di.testing import LifespanAsyncClient, LifespanClient

    Owner = LifespanClient | LifespanAsyncClient

SCOPE_OPTION = "lifespan_di_scope"
SCOPES = ("function", "session")
FIXTURES = ("lifespan", "lifespan_client", "async_lifespan_client")
SETUP_DOCS = '"Async tests" in docs/testing.md'


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        SCOPE_OPTION,
        "How long one lifespan of lifespan_di's fixtures lasts: 'function' (a "
        "lifespan per test, the default) or 'session' (one for the whole run).",
        default="function",
    )


@pytest.hookimpl(trylast=True)  # after pytest-django has configured Django
def pytest_configure(config: pytest.Config) -> None:
    scope = _scope(config)
    if scope not in SCOPES:
        msg = (
            f"{SCOPE_OPTION} = {scope!r} is not a lifespan_di scope: use "
            f"{' or '.join(map(repr, SCOPES))}."
        )
        raise pytest.UsageError(msg)
    if config.pluginmanager.has_plugin("django") and _django_configured():
        config.pluginmanager.register(LifespanFixtures(), "lifespan_di_fixtures")


def _scope(config: pytest.Config) -> str:
    return str(config.getini(SCOPE_OPTION)).strip()


def _owner_scope(fixture_name: str, config: pytest.Config) -> Any:
    return _scope(config)


def _django_configured() -> bool:
    from django.conf import settings

    return bool(os.environ.get("DJANGO_SETTINGS_MODULE")) or settings.configured


def _on_function_loop(request: pytest.FixtureRequest) -> bool:
    """Whether the test is a pytest-asyncio test running on a loop of its own."""
    if (
        pytest_asyncio is None
        or not request.config.pluginmanager.has_plugin("asyncio")
        or not pytest_asyncio.is_async_test(request.node)
    ):
        return False
    marker = request.node.get_closest_marker("asyncio")
    loop_scope = marker.kwargs.get("loop_scope") if marker is not None else None
    if loop_scope is None:
        try:
            loop_scope = request.config.getini("asyncio_default_test_loop_scope")
        except ValueError:  # pytest-asyncio < 0.26 has no such option
            loop_scope = None
    return loop_scope in (None, "", "function")


def _why_not_awaited(item: pytest.Item) -> str | None:
    """Why no plugin will await the async test ``item``; None when one will.

    pytest itself fails an ``async def`` test only when it calls it, after the
    fixtures have started the lifespan, with a message that names no cause.
    pytest-asyncio marks the tests it runs when it collects them
    (``is_async_test``), and anyio's plugin runs those marked ``anyio``.
    """
    if not isinstance(item, pytest.Function) or not inspect.iscoroutinefunction(
        item.obj
    ):
        return None
    if item.get_closest_marker("anyio") is not None:
        return None
    if pytest_asyncio is None:
        return (
            "pytest-asyncio is not installed, so nothing would await it. Install it "
            "(`pip install pytest-asyncio`) and set `asyncio_mode = auto` in your "
            "pytest configuration."
        )
    if not item.config.pluginmanager.has_plugin("asyncio"):
        return (
            "pytest-asyncio is installed but disabled (`-p no:asyncio`), so nothing "
            "would await it. Remove `-p no:asyncio` from the command line or the "
            "pytest configuration."
        )
    if pytest_asyncio.is_async_test(item):
        return None
    return (
        "pytest-asyncio runs in strict mode, where it awaits only the tests marked "
        "`@pytest.mark.asyncio`. Mark the test, or set `asyncio_mode = auto` in your "
        "pytest configuration."
    )


class LifespanFixtures:
    """The fixtures, registered as a plugin only where Django is configured."""

    @pytest.hookimpl(tryfirst=True)  # before any fixture starts the lifespan
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Refuse an async test that asks for a fixture and that nothing would await."""
        names = getattr(item, "fixturenames", ())
        wanted = ", ".join(repr(name) for name in names if name in FIXTURES)
        if not wanted:
            return
        why = _why_not_awaited(item)
        if why is not None:
            msg = (
                f"Cannot start the lifespan of {wanted} for the async test "
                f"{item.name!r}: {why} See {SETUP_DOCS}."
            )
            pytest.fail(msg, pytrace=False)

    # Class methods: pytest 9 deprecates instance methods as session fixtures.

    @pytest.fixture(scope=_owner_scope)
    @classmethod
    def _lifespan_di_owner(cls, request: pytest.FixtureRequest) -> Iterator[Owner]:
        """The client that runs the lifespan the other fixtures share.

        For an async test on a loop of its own, a ``LifespanAsyncClient`` on that
        loop, so that the test can await loop-bound resources itself. Otherwise (per
        session, sync tests, tests on a shared loop) a ``LifespanClient``, whose
        private loop owns the resources and needs no pytest-asyncio loop of the
        same scope; an async client sends its requests to that loop.
        """
        if (
            request.scope == "function"
            and _on_function_loop(request)
            and "lifespan_client" not in request.fixturenames
        ):
            yield request.getfixturevalue("_lifespan_di_async_owner")
            return
        from lifespan_di.testing import LifespanClient

        with LifespanClient() as owner:
            yield owner

    if pytest_asyncio is not None:

        @pytest_asyncio.fixture(loop_scope="function")
        @classmethod
        async def _lifespan_di_async_owner(cls) -> AsyncIterator[LifespanAsyncClient]:
            from lifespan_di.testing import LifespanAsyncClient

            async with LifespanAsyncClient() as owner:
                yield owner

    @pytest.fixture(scope=_owner_scope)
    @classmethod
    def lifespan(cls, _lifespan_di_owner: Owner) -> State:
        """The started resources of the configured container, by provider name."""
        return _lifespan_di_owner.state

    @pytest.fixture
    @classmethod
    def lifespan_client(cls, _lifespan_di_owner: Owner) -> LifespanClient:
        """A ``LifespanClient`` whose requests go through the running lifespan."""
        from lifespan_di.testing import LifespanClient
        from lifespan_di.testing.clients import _share

        owner = _lifespan_di_owner
        return _share(LifespanClient(application=owner.application), owner)

    @pytest.fixture
    @classmethod
    def async_lifespan_client(cls, _lifespan_di_owner: Owner) -> LifespanAsyncClient:
        """A ``LifespanAsyncClient`` whose requests go through the running lifespan."""
        from lifespan_di.testing import LifespanAsyncClient
        from lifespan_di.testing.clients import _share

        owner = _lifespan_di_owner
        return _share(LifespanAsyncClient(application=owner.application), owner)
