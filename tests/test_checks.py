"""Configuration: the LIFESPAN_DI setting, get_container(), and the system checks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from dependency_injector import containers, providers
from django.core.checks import run_checks
from django.core.handlers.wsgi import WSGIHandler
from django.test import override_settings

from lifespan_di import get_asgi_application, get_container
from lifespan_di.conf import get_settings
from lifespan_di.exceptions import ConfigurationError
from tests.project.broken_settings import BROKEN
from tests.project.containers import Container
from tests.test_lifespan_command import broken, startup_answer


def check_ids() -> list[str]:
    return sorted(
        message.id
        for message in run_checks()
        if message.id and message.id.startswith("lifespan_di.")
    )


def messages() -> dict[str, str]:
    return {message.id: message.msg for message in run_checks() if message.id}


class TestChecks:
    def test_valid_project_passes(self) -> None:
        """The test project's configuration raises no lifespan_di check."""
        assert check_ids() == []

    @pytest.mark.parametrize(
        ("setting", "check_id", "text"),
        [
            ("not a dict", "lifespan_di.E002", "must be a dict, not str"),
            ({}, "lifespan_di.E010", "LIFESPAN_DI['CONTAINER'] is missing"),
            (
                {"CONTAINER": Container, "TIMEOUT": 1},
                "lifespan_di.E009",
                "unknown keys: 'TIMEOUT'",
            ),
            (
                {"CONTAINER": "tests.project.nope.Container"},
                "lifespan_di.E003",
                "Cannot import",
            ),
            (
                {"CONTAINER": "tests.project.raising_container.Container"},
                "lifespan_di.E003",
                "importing it raised RuntimeError('the container module is broken')",
            ),
            (
                {"CONTAINER": "tests.project.containers.Greeter"},
                "lifespan_di.E004",
                "is not a dependency-injector container",
            ),
            (
                {"CONTAINER": Container, "STARTUP_TIMEOUT": 0},
                "lifespan_di.E005",
                "LIFESPAN_DI['STARTUP_TIMEOUT'] is 0",
            ),
            (
                {"CONTAINER": Container, "STARTUP_TIMEOUT": 10**400},
                "lifespan_di.E005",
                "LIFESPAN_DI['STARTUP_TIMEOUT'] is 1000",
            ),
            (
                {"CONTAINER": Container, "SHUTDOWN_TIMEOUT": float("inf")},
                "lifespan_di.E005",
                "LIFESPAN_DI['SHUTDOWN_TIMEOUT'] is inf",
            ),
            (
                {"CONTAINER": Container, "HEALTH_CHECK_TIMEOUT": float("inf")},
                "lifespan_di.E012",
                "LIFESPAN_DI['HEALTH_CHECK_TIMEOUT'] is inf",
            ),
            (
                {"CONTAINER": Container, "SHUTDOWN_TIMEOUT": "30"},
                "lifespan_di.E005",
                "LIFESPAN_DI['SHUTDOWN_TIMEOUT'] is '30'",
            ),
        ],
    )
    def test_malformed_setting(self, setting: Any, check_id: str, text: str) -> None:
        """Each malformed setting is reported with its own id and message."""
        with override_settings(LIFESPAN_DI=setting):
            found = messages()

        assert check_id in found
        assert text in found[check_id]

    def test_missing_setting(self) -> None:
        """A missing LIFESPAN_DI setting is E001."""
        with override_settings():
            from django.conf import settings

            del settings.LIFESPAN_DI
            found = messages()

        assert "The LIFESPAN_DI setting is missing" in found["lifespan_di.E001"]

    def test_missing_middleware(self) -> None:
        """MIDDLEWARE without LifespanStateMiddleware is E006."""
        with override_settings(MIDDLEWARE=[]):
            assert "lifespan_di.E006" in check_ids()

    def test_unresolvable_view_marker(self) -> None:
        """A view marker naming no provider is E007, naming view and parameter, in nested and class-based views."""
        with override_settings(ROOT_URLCONF="tests.project.broken_urls"):
            errors = [
                message.msg
                for message in run_checks()
                if message.id == "lifespan_di.E007"
            ]

        assert len(errors) == 2
        assert any(
            "parameter 'client' of tests.project.broken_urls.typo" in error
            for error in errors
        )
        assert any(
            error.endswith("Did you mean Provide['httpx_client']?") for error in errors
        )
        assert any(
            "parameter 'cache' of tests.project.broken_urls.TypoView.get" in error
            for error in errors
        )

    def test_context_local_resource_is_w002(self) -> None:
        """A ContextLocalResource in the container is W002, pointing to RequestResource."""

        class WithContextLocal(containers.DeclarativeContainer):
            session = providers.ContextLocalResource(dict)

        with override_settings(LIFESPAN_DI={"CONTAINER": WithContextLocal}):
            found = messages()

        assert (
            "'session' is a providers.ContextLocalResource" in found["lifespan_di.W002"]
        )

    def test_app_with_its_own_runserver_listed_first(self) -> None:
        """staticfiles above lifespan_di in INSTALLED_APPS is W001: its runserver would win."""
        installed = [
            "django.contrib.staticfiles",
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "lifespan_di",
        ]

        with override_settings(INSTALLED_APPS=installed, STATIC_URL="/static/"):
            warnings = [
                message.msg
                for message in run_checks()
                if message.id == "lifespan_di.W001"
            ]

        assert warnings == [
            "'django.contrib.staticfiles' comes before 'lifespan_di' in INSTALLED_APPS, so its "
            "runserver command wins and `manage.py runserver` runs without lifespan."
        ]

    def test_lifespan_di_first_is_fine(self) -> None:
        """lifespan_di above staticfiles raises no W001."""
        installed = [
            "lifespan_di",
            "django.contrib.staticfiles",
            "django.contrib.contenttypes",
            "django.contrib.auth",
        ]

        with override_settings(INSTALLED_APPS=installed, STATIC_URL="/static/"):
            assert "lifespan_di.W001" not in check_ids()

    def test_container_asked_for_while_its_module_is_imported(self) -> None:
        """A container module asking for the container at import is E003 saying so, its id printed once."""
        with override_settings(
            LIFESPAN_DI={"CONTAINER": "tests.project.early_container.Container"}
        ):
            printed = [
                str(message)
                for message in run_checks()
                if message.id == "lifespan_di.E003"
            ]

        assert len(printed) == 1
        assert printed[0].count("lifespan_di.E003") == 1
        assert (
            "code run by that import asked for the container (get_container(), or a "
            "resource through lifespan_di) before its module had finished defining it."
        ) in printed[0]

    @pytest.mark.parametrize("check_id", sorted(BROKEN))
    def test_every_startup_problem_is_a_system_check(self, check_id: str) -> None:
        """Each problem that fails the lifespan startup is reported by manage.py check, under its own id only."""
        with broken(check_id):
            found = check_ids()

        assert set(found) == {check_id}


class TestSettings:
    def test_timeouts_are_read(self) -> None:
        """Timeouts come from the setting, None meaning no limit, 30 s by default."""
        with override_settings(
            LIFESPAN_DI={"CONTAINER": Container, "STARTUP_TIMEOUT": None}
        ):
            settings = get_settings()

        assert settings.startup_timeout is None
        assert settings.shutdown_timeout == 30.0

    def test_invalid_setting_raises_with_check_id(self) -> None:
        """Reading an invalid setting raises ConfigurationError carrying the check id."""
        with (
            override_settings(
                LIFESPAN_DI={"CONTAINER": Container, "STARTUP_TIMEOUT": -1}
            ),
            pytest.raises(ConfigurationError) as caught,
        ):
            get_settings()

        assert caught.value.check_id == "lifespan_di.E005"


class TestGetContainer:
    def test_created_when_the_app_registry_is_ready(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """AppConfig.ready() creates the configured container, which get_container() then returns."""
        from django.apps import apps

        from lifespan_di import conf

        monkeypatch.setattr(conf, "_configured", None)

        apps.get_app_config("lifespan_di").ready()

        assert conf._configured is not None
        assert conf._configured[1] is get_container()

    def test_one_instance_per_process(self) -> None:
        """The configured class is instantiated once and reused."""
        first, second = get_container(), get_container()

        assert first is second
        assert type(first).__name__ == "DynamicContainer"

    def test_instance_setting_is_used_as_is(self) -> None:
        """A container instance in the setting is returned itself."""
        instance = Container()

        with override_settings(LIFESPAN_DI={"CONTAINER": instance}):
            assert get_container() is instance

    def test_dotted_path_to_an_instance(self) -> None:
        """A dotted path naming a container instance gives that instance, not a new one."""
        from tests.project.instance import container

        with override_settings(
            LIFESPAN_DI={"CONTAINER": "tests.project.instance.container"}
        ):
            assert get_container() is container

    def test_setting_change_builds_a_new_container(self) -> None:
        """Overriding the setting in a test gives a new container, and the old one comes back after."""
        before = get_container()

        with override_settings(
            LIFESPAN_DI={"CONTAINER": "tests.project.containers.Container"}
        ):
            during = get_container()
        after = get_container()

        assert during is not before
        assert after is not during


NOT_INSTALLED = ["django.contrib.contenttypes", "django.contrib.auth"]


class TestNotInstalled:
    def test_lifespan_startup_fails(self) -> None:
        """LIFESPAN_DI set without 'lifespan_di' in INSTALLED_APPS fails the lifespan startup with E016, saying where to add it."""
        # Without the middleware, which would refuse first (see below).
        with override_settings(INSTALLED_APPS=NOT_INSTALLED, MIDDLEWARE=[]):
            answer = asyncio.run(startup_answer())

        assert answer["type"] == "lifespan.startup.failed"
        assert answer["message"] == (
            "'lifespan_di' is not in INSTALLED_APPS, so `manage.py check` never runs "
            "lifespan_di's checks, `manage.py lifespan` does not exist and "
            "`manage.py runserver` serves without lifespan. Add 'lifespan_di' to "
            "INSTALLED_APPS, above 'django.contrib.staticfiles' (whose runserver "
            "would otherwise win). (lifespan_di.E016)"
        )

    def test_get_asgi_application_refuses(self) -> None:
        """get_asgi_application() raises E016 at once, for servers that send no lifespan events."""
        with (
            override_settings(INSTALLED_APPS=NOT_INSTALLED),
            pytest.raises(ConfigurationError) as caught,
        ):
            get_asgi_application()

        assert caught.value.check_id == "lifespan_di.E016"

    def test_middleware_refuses_to_load(self) -> None:
        """LifespanStateMiddleware raises E016 when Django's handler loads it, so Django's runserver and WSGI servers refuse at startup."""
        with (
            override_settings(INSTALLED_APPS=NOT_INSTALLED),
            pytest.raises(ConfigurationError) as caught,
        ):
            WSGIHandler()

        assert caught.value.check_id == "lifespan_di.E016"
