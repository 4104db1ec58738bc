"""manage.py lifespan check / graph: a deploy gate and a picture of the start order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from dependency_injector import containers, providers
from django.conf import settings
from django.core.management import CommandError, call_command
from django.core.management.base import BaseCommand
from django.test import override_settings

from lifespan_di import LifespanASGIHandler
from lifespan_di.management.commands.lifespan import Command
from tests.project.broken_settings import BROKEN, MISSING
from tests.recorder import Recorder

REPO_ROOT = Path(__file__).resolve().parent.parent
# The project's views use its own container; these tests run other containers.
EMPTY_URLS = "tests.project.empty_urls"


@contextmanager
def broken(check_id: str) -> Iterator[None]:
    """The test project's settings with the problem ``check_id`` stands for."""
    changes = BROKEN[check_id]
    with override_settings(
        **{name: value for name, value in changes.items() if value is not MISSING}
    ):
        for name, value in changes.items():
            if value is MISSING:
                delattr(settings, name)
        yield


async def startup_answer() -> dict[str, Any]:
    """What the ASGI application answers a server's lifespan.startup."""
    communicator = ApplicationCommunicator(
        LifespanASGIHandler(), {"type": "lifespan", "state": {}}
    )
    await communicator.send_input({"type": "lifespan.startup"})
    answer: dict[str, Any] = await communicator.receive_output(timeout=10)
    if answer["type"] == "lifespan.startup.complete":
        await communicator.send_input({"type": "lifespan.shutdown"})
        await communicator.receive_output(timeout=10)
    await communicator.wait(timeout=10)
    return answer


def run_lifespan_check(
    check_id: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """``manage.py lifespan [options] check`` as a process, on the broken settings."""
    return manage_lifespan(
        *options,
        "check",
        DJANGO_SETTINGS_MODULE="tests.project.broken_settings",
        LIFESPAN_DI_TEST_BROKEN=check_id,
    )


def manage_lifespan(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m django lifespan *args`` as a process, with ``env`` added."""
    environ = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    for name in ("LIFESPAN_DI_TEST_RECORD", "DJANGO_SETTINGS_MODULE"):
        if name not in env:
            environ.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "django", "lifespan", *args],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run(*args: str) -> str:
    out = StringIO()
    call_command("lifespan", *args, stdout=out)
    return out.getvalue()


def chain(recorder: Recorder, **failures: BaseException) -> containers.Container:
    class Chain(containers.DeclarativeContainer):
        db = providers.Resource(
            recorder.async_resource("db", fail_stop=failures.get("db_stop"))
        )
        cache = providers.Resource(recorder.sync_resource("cache"))
        repo = providers.Factory(dict, db=db)
        api = providers.Resource(
            recorder.async_resource("api", fail_start=failures.get("api")),
            repo=repo,
            cache=cache,
        )
        worker = providers.Resource(recorder.async_resource("worker"), api=api)

    return Chain()


class TestCheck:
    def test_success_prints_the_report(self, recorder: Recorder) -> None:
        """check starts and stops every resource and prints each one's dependencies, times and status."""
        with override_settings(
            LIFESPAN_DI={"CONTAINER": chain(recorder)}, ROOT_URLCONF=EMPTY_URLS
        ):
            output = run("check")

        lines = output.splitlines()
        assert lines[0].split() == [
            "resource",
            "depends",
            "on",
            "start",
            "time",
            "stop",
            "time",
            "status",
        ]
        api = next(line for line in lines if line.startswith("Chain.api "))
        assert "Chain.db, Chain.cache" in api
        assert api.rstrip().endswith("stopped")
        assert "All 4 resources of Chain started and stopped cleanly." in output
        assert sorted(recorder.stopped) == ["api", "cache", "db", "worker"]

    def test_one_resource_is_counted_in_the_singular(self, recorder: Recorder) -> None:
        """With one resource, the closing line names it in the singular."""

        class One(containers.DeclarativeContainer):
            db = providers.Resource(recorder.async_resource("db"))

        with override_settings(
            LIFESPAN_DI={"CONTAINER": One()}, ROOT_URLCONF=EMPTY_URLS
        ):
            output = run("check")

        assert output.splitlines()[-1] == (
            "The only resource of One, One.db, started and stopped cleanly."
        )

    def test_no_resource_says_so(self) -> None:
        """With no resource, the closing line says there was nothing to start."""

        class Empty(containers.DeclarativeContainer):
            value = providers.Object(1)

        with override_settings(
            LIFESPAN_DI={"CONTAINER": Empty()}, ROOT_URLCONF=EMPTY_URLS
        ):
            output = run("check")

        assert output.splitlines()[-1] == ("Empty has no resources to start or stop.")

    def test_startup_failure_names_the_resource(self, recorder: Recorder) -> None:
        """A resource failing to start fails the command, naming it; the report shows what happened to each."""
        container = chain(recorder, api=ConnectionRefusedError("api is down"))

        with override_settings(
            LIFESPAN_DI={"CONTAINER": container}, ROOT_URLCONF=EMPTY_URLS
        ):
            out = StringIO()
            with pytest.raises(
                CommandError, match=r"Cannot start resource 'Chain\.api'"
            ):
                call_command("lifespan", "check", stdout=out)

        report = {
            line.split()[0]: line.split()[-1]
            for line in out.getvalue().splitlines()[2:]
        }
        assert report["Chain.api"] == "failed"
        assert report["Chain.db"] == "stopped"
        assert out.getvalue().splitlines()[-1].startswith("Chain.worker")
        assert out.getvalue().splitlines()[-1].endswith("not started")

    def test_teardown_failure_fails_the_command(self, recorder: Recorder) -> None:
        """A teardown that raises fails the command, naming the resource."""
        container = chain(recorder, db_stop=RuntimeError("flush failed"))

        with (
            override_settings(
                LIFESPAN_DI={"CONTAINER": container}, ROOT_URLCONF=EMPTY_URLS
            ),
            pytest.raises(
                CommandError, match=r"'Chain\.db' \(RuntimeError\('flush failed'\)\)"
            ),
        ):
            run("check")

        assert sorted(recorder.stopped) == ["api", "cache", "db", "worker"]

    def test_unresolved_view_marker_fails_before_starting(
        self, recorder: Recorder
    ) -> None:
        """A view marker naming no provider fails the check before any resource starts, as the server would."""
        with (
            override_settings(ROOT_URLCONF="tests.project.broken_urls"),
            pytest.raises(
                CommandError,
                match=r"parameter 'client' of tests\.project\.broken_urls\.typo",
            ),
        ):
            run("check")

    @pytest.mark.e2e
    def test_exit_status_from_the_command_line(self) -> None:
        """From the shell, a failing resource makes the command exit 1 with the resource's name on stderr."""
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.project.settings",
            "PYTHONPATH": str(REPO_ROOT),
            "LIFESPAN_DI_TEST_FAIL": "counter",
        }
        env.pop("LIFESPAN_DI_TEST_RECORD", None)

        result = subprocess.run(
            [sys.executable, "-m", "django", "lifespan", "check"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert result.returncode == 1
        assert (
            "CommandError: Cannot start resource 'Container.counter'" in result.stderr
        )


@pytest.mark.e2e
class TestRefusesWhatTheServerRefuses:
    @pytest.mark.parametrize("options", [(), ("--skip-checks",)], ids=["", "skip"])
    @pytest.mark.parametrize("check_id", sorted(BROKEN))
    def test_same_refusal_as_the_server(
        self, check_id: str, options: tuple[str, ...]
    ) -> None:
        """For every problem that fails the server's startup, check exits 1 with the message of the server's lifespan.startup.failed, with or without --skip-checks."""
        with broken(check_id):
            answer = asyncio.run(startup_answer())

        result = run_lifespan_check(check_id, *options)

        assert answer["type"] == "lifespan.startup.failed"
        assert f"({check_id})" in answer["message"]
        assert result.returncode == 1, result.stderr
        assert f"CommandError: {answer['message']}" in result.stderr
        assert "started and stopped cleanly" not in result.stdout


class TestGraph:
    def test_waves(self, recorder: Recorder) -> None:
        """graph prints the resources wave by wave, each with what it starts after."""
        with override_settings(
            LIFESPAN_DI={"CONTAINER": chain(recorder)}, ROOT_URLCONF=EMPTY_URLS
        ):
            output = run("graph")

        assert output.splitlines() == [
            "Wave 1:",
            "  Chain.db",
            "  Chain.cache",
            "Wave 2:",
            "  Chain.api (after Chain.db, Chain.cache)",
            "Wave 3:",
            "  Chain.worker (after Chain.api)",
        ]
        assert recorder.events == []

    def test_mermaid(self, recorder: Recorder) -> None:
        """graph --format mermaid prints a flowchart with an edge from each dependency to its dependent."""
        with override_settings(
            LIFESPAN_DI={"CONTAINER": chain(recorder)}, ROOT_URLCONF=EMPTY_URLS
        ):
            output = run("graph", "--format", "mermaid")

        lines = output.splitlines()
        assert lines[0] == "flowchart LR"
        ids = {
            line.split('"')[1]: line.split("[")[0].strip()
            for line in lines
            if "[" in line
        }
        assert f"    {ids['Chain.db']} --> {ids['Chain.api']}" in lines
        assert f"    {ids['Chain.cache']} --> {ids['Chain.api']}" in lines
        assert f"    {ids['Chain.api']} --> {ids['Chain.worker']}" in lines
        assert len([line for line in lines if "-->" in line]) == 3


class TestDjangoOptions:
    @pytest.mark.parametrize("action", ["check", "graph"])
    def test_accepted_after_the_action(self, action: str) -> None:
        """Django's options are accepted after the action, as before it."""
        parser = Command().create_parser("manage.py", "lifespan")

        options = parser.parse_args(
            [
                action,
                *("-v", "2", "--settings", "a.settings", "--pythonpath", "src"),
                *("--traceback", "--no-color", "--force-color", "--skip-checks"),
            ]
        )

        assert options.verbosity == 2
        assert options.settings == "a.settings"
        assert options.pythonpath == "src"
        assert options.traceback is options.no_color is options.force_color is True
        assert options.skip_checks is True

    def test_before_the_action_is_not_reset_by_it(self) -> None:
        """An option given before the action keeps its value; one not given keeps Django's default."""
        parser = Command().create_parser("manage.py", "lifespan")

        options = parser.parse_args(["-v", "3", "--traceback", "check"])

        assert options.verbosity == 3
        assert options.traceback is True
        assert options.no_color is False
        assert options.skip_checks is False

    def test_every_base_option_of_django(self) -> None:
        """Each option Django gives every command, but --version, is accepted after the action."""
        django_help = BaseCommand().create_parser("manage.py", "any").format_help()
        out = StringIO()
        parser = Command().create_parser("manage.py", "lifespan")

        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            parser.parse_args(["check", "--help"])

        expected = set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", django_help))
        accepted = set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", out.getvalue()))
        assert expected - {"--version"} <= accepted

    @pytest.mark.e2e
    def test_from_the_command_line(self) -> None:
        """`lifespan check --settings=... -v 2` from the shell runs the check with those settings."""
        result = manage_lifespan(
            "check", "--settings=tests.project.settings", "-v", "2", "--no-color"
        )

        assert result.returncode == 0, result.stderr
        assert "All 2 resources of Container started and stopped cleanly." in (
            result.stdout
        )
