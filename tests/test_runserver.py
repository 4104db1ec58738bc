"""``manage.py runserver``: uvicorn with lifespan on, the reloader, and the fallbacks."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command, get_commands
from django.test import Client, RequestFactory, override_settings
from django.utils import autoreload

from lifespan_di.exceptions import LifespanNotRunningError
from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.management.commands.runserver import Command
from lifespan_di.serve import DevServer, bind, restart_with_reloader
from lifespan_di.state import request_state

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 20.0
RESOURCES = {"httpx_client", "counter"}
BANNER = re.compile(
    r"Starting ASGI development server .* at http://127\.0\.0\.1:(\d+)/"
)
WARNING = "uvicorn is not installed"
STATIC_SETTINGS = """\
from tests.project.settings import *  # noqa: F403

INSTALLED_APPS = ["lifespan_di", "django.contrib.staticfiles"]
STATIC_URL = "/static/"
STATICFILES_DIRS = [{static_dir!r}]
"""


THREADS_SETTINGS = """\
from tests.project.settings import *  # noqa: F403
from tests.project.settings import LIFESPAN_DI

LIFESPAN_DI = {**LIFESPAN_DI, "REQUEST_THREADS": 2}
"""


class Runserver:
    """One ``python -m django runserver 127.0.0.1:0`` process of the test project.

    It runs in a session of its own, so that signalling its process group reaches
    the reloader's child process too, as Ctrl-C in a terminal does.
    """

    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        settings: str = "tests.project.settings",
        fail: str | None = None,
    ) -> None:
        self.record_path = tmp_path / "record"
        self.stdout_path = tmp_path / "stdout"
        self.stderr_path = tmp_path / "stderr"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(tmp_path)]),
            "PYTHONUNBUFFERED": "1",
            "LIFESPAN_DI_TEST_RECORD": str(self.record_path),
        }
        env.pop("LIFESPAN_DI_TEST_FAIL", None)
        env.pop(autoreload.DJANGO_AUTORELOAD_ENV, None)
        if fail is not None:
            env["LIFESPAN_DI_TEST_FAIL"] = fail
        with self.stdout_path.open("wb") as stdout, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "django", "runserver", "127.0.0.1:0", *args],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=err,
                start_new_session=True,
            )

    def port(self, banner: int = 1) -> int:
        """Wait for the ``banner``-th start banner and return the port it names."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ports = BANNER.findall(self.stdout())
            if len(ports) >= banner:
                return int(ports[banner - 1])
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"No start banner #{banner}:\n{self.stdout()}\n{self.stderr()}")

    def wait_ready(self, port: int) -> str:
        """Poll GET /plain/ on ``port`` until it answers 200; return the base URL."""
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + TIMEOUT
        with httpx.Client(base_url=base_url, timeout=5.0) as client:
            while time.monotonic() < deadline and self.proc.poll() is None:
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/plain/").status_code == 200:
                        return base_url
                time.sleep(0.05)
        pytest.fail(f"runserver did not serve on {port}:\n{self.stderr()}")

    def wait_exit(self) -> int:
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"runserver did not exit within {TIMEOUT} s:\n{self.stderr()}")

    def records(self) -> list[str]:
        if not self.record_path.exists():
            return []
        return self.record_path.read_text(encoding="utf-8").splitlines()

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Stop the process by its PID (terminate, then kill), then its group."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=TIMEOUT)
        # A reloader child left behind by a failed test shares the group id, which
        # is the PID of the process started here.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Runserver]]:
    """Start runserver processes on demand; every one is stopped at teardown."""
    processes: list[Runserver] = []

    def start(*args: str, **kwargs: Any) -> Runserver:
        process = Runserver(tmp_path, *args, **kwargs)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


@pytest.fixture
def static_settings(tmp_path: Path) -> Path:
    """A settings module with staticfiles after lifespan_di, and one static file."""
    static_dir = tmp_path / "static"
    static_dir.mkdir()
    (static_dir / "hello.txt").write_text("hello static\n", encoding="utf-8")
    module = tmp_path / "static_settings.py"
    module.write_text(STATIC_SETTINGS.format(static_dir=str(static_dir)), "utf-8")
    return module


@pytest.mark.e2e
def test_runserver_lends_request_threads_as_the_servers_do(
    launch: Callable[..., Runserver], tmp_path: Path
) -> None:
    """With REQUEST_THREADS, runserver's sync views run on its long-lived threads."""
    (tmp_path / "threads_settings.py").write_text(THREADS_SETTINGS, "utf-8")
    server = launch("--noreload", settings="threads_settings")

    with httpx.Client(base_url=server.wait_ready(server.port())) as client:
        names = [client.get(f"/threads/sync/?id={n}").json()["name"] for n in range(3)]

    # A request may come before the previous one gave its thread back: then it
    # gets the second.
    assert set(names) <= {"lifespan_di-request-1_0", "lifespan_di-request-2_0"}


def assert_started_then_stopped(records: list[str], times: int = 1) -> None:
    cycle = len(RESOURCES) * 2
    assert len(records) == cycle * times, records
    for start in range(0, len(records), cycle):
        half = start + len(RESOURCES)
        assert {r.split(":")[1] for r in records[start:half]} == RESOURCES, records
        assert all(r.startswith("start:") for r in records[start:half]), records
        assert all(r.startswith("stop:") for r in records[half : start + cycle])


@pytest.mark.e2e
def test_noreload_serves_resources_and_sigterm_shuts_them_down(
    launch: Callable[..., Runserver],
) -> None:
    """Under --noreload, views get the started resources over HTTP, and SIGTERM runs the lifespan shutdown before the process ends."""
    server = launch("--noreload")
    with httpx.Client(base_url=server.wait_ready(server.port())) as client:
        sync_state = client.get("/sync-state/")
        async_inject = client.get("/async-inject/")

    server.proc.send_signal(signal.SIGTERM)
    exit_code = server.wait_exit()

    assert sync_state.status_code == 200
    assert set(sync_state.json()["keys"]) >= RESOURCES
    assert async_inject.status_code == 200
    assert async_inject.json()["same_client"] is True
    assert exit_code == -signal.SIGTERM  # uvicorn re-raises SIGTERM once shut down
    assert "Application shutdown complete." in server.stderr()
    assert_started_then_stopped(server.records())


@pytest.mark.e2e
def test_reloader_restarts_the_lifespan_on_a_code_change_and_ctrl_c_stops_it(
    launch: Callable[..., Runserver], static_settings: Path
) -> None:
    """With the reloader, a changed module shuts the lifespan down and starts it again in a new child; Ctrl-C in the terminal stops both processes after the shutdown."""
    server = launch(settings="static_settings")
    with httpx.Client(base_url=server.wait_ready(server.port())) as client:
        before = client.get("/sync-state/")
    mtime = static_settings.stat().st_mtime + 1
    os.utime(static_settings, (mtime, mtime))

    with httpx.Client(base_url=server.wait_ready(server.port(banner=2))) as client:
        after = client.get("/sync-state/")
    os.killpg(server.proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    exit_code = server.wait_exit()

    assert before.status_code == after.status_code == 200
    assert before.json()["client"] != after.json()["client"]
    assert exit_code == 0, server.stderr()
    assert server.stderr().count("Application shutdown complete.") == 2
    assert_started_then_stopped(server.records(), times=2)


@pytest.mark.e2e
def test_reloader_passes_sigterm_to_the_child(
    launch: Callable[..., Runserver],
) -> None:
    """SIGTERM to the reloader's process (not its group) reaches the serving child, which shuts the lifespan down; both exit with 0."""
    server = launch()
    server.wait_ready(server.port())

    server.proc.send_signal(signal.SIGTERM)
    exit_code = server.wait_exit()

    assert exit_code == 0, server.stderr()
    assert "Application shutdown complete." in server.stderr()
    assert_started_then_stopped(server.records())


@pytest.mark.e2e
@pytest.mark.parametrize("args", [("--noreload",), ()], ids=["noreload", "reloader"])
def test_resource_failing_at_startup_makes_runserver_exit_1(
    launch: Callable[..., Runserver], args: tuple[str, ...]
) -> None:
    """A resource raising at startup makes runserver exit with 1 by itself, naming the resource; the reloader does not restart it."""
    server = launch(*args, fail="counter")

    exit_code = server.wait_exit()

    stderr = server.stderr()
    assert exit_code == 1, stderr
    assert "Container.counter" in stderr
    assert "Application startup failed" in stderr
    assert "lifespan startup failed" in stderr
    assert stderr.count("Started server process") == 1
    assert "start:counter" not in server.records()


@pytest.mark.e2e
def test_static_files_are_served_and_lifespan_passes_the_static_handler(
    launch: Callable[..., Runserver], static_settings: Path
) -> None:
    """With staticfiles installed and --insecure, static files are served and views still get the started resources."""
    server = launch("--noreload", "--insecure", settings="static_settings")
    with httpx.Client(base_url=server.wait_ready(server.port())) as client:
        static = client.get("/static/hello.txt")
        sync_state = client.get("/sync-state/")

    assert static.status_code == 200
    assert static.text == "hello static\n"
    assert sync_state.status_code == 200
    assert set(sync_state.json()["keys"]) >= RESOURCES


DJANGO_BANNER = re.compile(
    # 5.2: "Starting development server at"; 6.1: "Starting WSGI development server at".
    r"Starting (?:WSGI )?development server at http://127\.0\.0\.1:(\d+)/"
)
ORDER_SETTINGS = """\
from tests.project.settings import *  # noqa: F403

INSTALLED_APPS = ["django.contrib.staticfiles", *INSTALLED_APPS]  # noqa: F405
STATIC_URL = "/static/"
DEBUG = True  # Django's technical 500 response shows the exception
"""
MISSING_SETTINGS = """\
from tests.project.settings import *  # noqa: F403

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "django.contrib.contenttypes",
    "django.contrib.auth",
]
"""
STATICFILES_FIRST = [
    "django.contrib.staticfiles",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "lifespan_di",
]


def djangos_port(server: Runserver) -> int:
    """Wait for the start banner of Django's own runserver; return its port."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and server.proc.poll() is None:
        found = DJANGO_BANNER.search(server.stdout())
        if found:
            return int(found.group(1))
        time.sleep(0.05)
    pytest.fail(
        f"No banner of Django's runserver:\n{server.stdout()}\n{server.stderr()}"
    )


class TestUnderDjangosRunserver:
    """``lifespan_di`` below ``django.contrib.staticfiles``, or not installed at all."""

    def test_request_state_names_the_installed_apps_order(self) -> None:
        """Under staticfiles' runserver (a WSGI request), reading request.state names the order of INSTALLED_APPS as the cause, not runserver."""
        with override_settings(INSTALLED_APPS=STATICFILES_FIRST, STATIC_URL="/static/"):
            assert get_commands()["runserver"] == "django.contrib.staticfiles"
            with pytest.raises(LifespanNotRunningError) as caught:
                Client().get("/sync-state/")

        message = str(caught.value)
        assert message.startswith(
            "Cannot use request.state['httpx_client']: no lifespan is running in this "
            "process, so no resources were started. `manage.py runserver` is not "
            "lifespan_di's: 'django.contrib.staticfiles' comes before 'lifespan_di' "
            "in INSTALLED_APPS, so Django runs the runserver of "
            "'django.contrib.staticfiles', whose server sends no lifespan events "
            "(lifespan_di.W001). Move 'lifespan_di' above "
            "'django.contrib.staticfiles' in INSTALLED_APPS."
        )
        assert "django-lifespan-di[server]" not in message

    def test_request_state_names_lifespan_di_missing(self) -> None:
        """Without lifespan_di in INSTALLED_APPS, reading a request's state says so and where to add it."""
        with override_settings(INSTALLED_APPS=STATICFILES_FIRST[:-1]):
            state = request_state(RequestFactory().get("/"))
            with pytest.raises(LifespanNotRunningError) as caught:
                state.httpx_client  # noqa: B018

        assert (
            "`manage.py runserver` is not lifespan_di's: 'lifespan_di' is not in "
            "INSTALLED_APPS, so Django runs the runserver of "
            "'django.contrib.staticfiles', whose server sends no lifespan events, and "
            "lifespan_di's system checks never run. Add 'lifespan_di' to "
            "INSTALLED_APPS, above 'django.contrib.staticfiles'."
        ) in str(caught.value)

    def test_lifespan_di_first_keeps_the_runserver_advice(self) -> None:
        """With lifespan_di's runserver in charge, the error names no INSTALLED_APPS problem."""
        state = request_state(RequestFactory().get("/"))

        with pytest.raises(LifespanNotRunningError) as caught:
            state["httpx_client"]

        assert "INSTALLED_APPS" not in str(caught.value)
        assert "`manage.py runserver` with" in str(caught.value)

    @pytest.mark.e2e
    def test_served_by_staticfiles_runserver(
        self, launch: Callable[..., Runserver], tmp_path: Path
    ) -> None:
        """Django's runserver, run because staticfiles comes first, warns W001 at startup, and a view reading request.state fails naming that order."""
        (tmp_path / "order_settings.py").write_text(ORDER_SETTINGS, "utf-8")
        server = launch("--noreload", settings="order_settings")
        port = djangos_port(server)

        with httpx.Client(timeout=5.0) as client:
            response = client.get(
                f"http://127.0.0.1:{port}/sync-state/",
                headers={"Accept": "text/plain"},
            )

        assert "(lifespan_di.W001)" in server.stderr()
        assert response.status_code == 500
        assert response.text.startswith("LifespanNotRunningError at /sync-state/")
        assert (
            "'django.contrib.staticfiles' comes before 'lifespan_di' in INSTALLED_APPS"
            in response.text
        )

    @pytest.mark.e2e
    def test_lifespan_di_missing_stops_djangos_runserver(
        self, launch: Callable[..., Runserver], tmp_path: Path
    ) -> None:
        """Without lifespan_di in INSTALLED_APPS, Django's runserver stops at startup with E016, as its handler loads the middleware."""
        (tmp_path / "missing_settings.py").write_text(MISSING_SETTINGS, "utf-8")
        server = launch("--noreload", settings="missing_settings")

        exit_code = server.wait_exit()

        assert exit_code == 1
        assert (
            server.stderr()
            .rstrip()
            .endswith(
                "'lifespan_di' is not in INSTALLED_APPS, so `manage.py check` never runs "
                "lifespan_di's checks, `manage.py lifespan` does not exist and "
                "`manage.py runserver` serves without lifespan. Add 'lifespan_di' to "
                "INSTALLED_APPS, above 'django.contrib.staticfiles' (whose runserver "
                "would otherwise win). (lifespan_di.E016)"
            )
        )


class FakeWSGIServer:
    """Stands in for ``django.core.servers.basehttp.run``: records the handler."""

    def __init__(self) -> None:
        self.handlers: list[Any] = []

    def __call__(self, addr: str, port: int, handler: Any, **kwargs: Any) -> None:
        self.handlers.append(handler)


@pytest.fixture
def wsgi_server(monkeypatch: pytest.MonkeyPatch) -> FakeWSGIServer:
    fake = FakeWSGIServer()
    monkeypatch.setattr("django.core.management.commands.runserver.run", fake)
    return fake


def runserver(*args: str) -> str:
    """Run the command in process with --noreload and return its stderr."""
    err = io.StringIO()
    call_command("runserver", "127.0.0.1:0", "--noreload", *args, stderr=err)
    return err.getvalue()


class TestFallback:
    def test_nolifespan_uses_djangos_wsgi_server(
        self, wsgi_server: FakeWSGIServer
    ) -> None:
        """--nolifespan serves Django's WSGI handler with Django's server, without a warning."""
        stderr = runserver("--nolifespan")

        assert [type(handler) for handler in wsgi_server.handlers] == [WSGIHandler]
        assert stderr == ""

    def test_without_uvicorn_warns_once_and_uses_djangos_server(
        self, wsgi_server: FakeWSGIServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without uvicorn, runserver warns once that no lifespan runs, with the install command, and serves with Django's WSGI server."""
        monkeypatch.setitem(sys.modules, "uvicorn", None)

        stderr = runserver()

        assert [type(handler) for handler in wsgi_server.handlers] == [WSGIHandler]
        assert stderr.count(WARNING) == 1
        assert "lifespan will not run" in stderr
        assert 'pip install "django-lifespan-di[server]"' in stderr

    def test_reloader_child_does_not_repeat_the_warning(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The reloader's child process, which runs the command again, does not warn a second time."""
        monkeypatch.setitem(sys.modules, "uvicorn", None)
        monkeypatch.setenv(autoreload.DJANGO_AUTORELOAD_ENV, "true")
        err = io.StringIO()

        installed = Command(stderr=err).uvicorn_installed()

        assert installed is False
        assert err.getvalue() == ""


STATICFILES_APPS = ["lifespan_di", "django.contrib.staticfiles"]


class TestApplication:
    def test_default_is_lifespan_di_handler(self) -> None:
        """Without ASGI_APPLICATION, runserver serves lifespan_di.get_asgi_application()."""
        application = Command().get_asgi_handler()

        assert isinstance(application, LifespanASGIHandler)

    @override_settings(ASGI_APPLICATION="tests.project.asgi.application")
    def test_asgi_application_setting_is_served(self) -> None:
        """ASGI_APPLICATION names the application runserver serves."""
        from tests.project.asgi import application as expected

        application = Command().get_asgi_handler()

        assert application is expected

    @override_settings(ASGI_APPLICATION="tests.project.nowhere.application")
    def test_unimportable_asgi_application_is_reported(self) -> None:
        """An ASGI_APPLICATION that cannot be imported raises ImproperlyConfigured naming it."""
        with pytest.raises(ImproperlyConfigured, match=r"tests\.project\.nowhere"):
            Command().get_asgi_handler()

    @pytest.mark.parametrize(
        ("debug", "options", "wrapped"),
        [
            (True, {}, True),
            (False, {}, False),
            (False, {"insecure_serving": True}, True),
            (True, {"use_static_handler": False}, False),
        ],
        ids=["debug", "no-debug", "insecure", "nostatic"],
    )
    def test_static_files_handler_wraps_the_application(
        self, debug: bool, options: dict[str, bool], wrapped: bool
    ) -> None:
        """With staticfiles installed, the application is wrapped to serve static files exactly when Django's runserver would."""
        options = {"use_static_handler": True, "insecure_serving": False, **options}
        with override_settings(
            INSTALLED_APPS=STATICFILES_APPS, STATIC_URL="/static/", DEBUG=debug
        ):
            application = Command().get_asgi_handler(**options)

        assert isinstance(application, ASGIStaticFilesHandler) is wrapped
        inner = application.application if wrapped else application
        assert isinstance(inner, LifespanASGIHandler)

    def test_static_options_exist_only_with_staticfiles(self) -> None:
        """--nostatic and --insecure are offered only when staticfiles is installed."""
        without = Command().create_parser("manage.py", "runserver").format_help()
        with override_settings(INSTALLED_APPS=STATICFILES_APPS):
            with_static = Command().create_parser("manage.py", "runserver")
            help_text = with_static.format_help()

        assert "--nolifespan" in without
        assert "--nostatic" not in without
        assert "--nostatic" in help_text
        assert "--insecure" in help_text


class FakeDevServer:
    """Stands in for ``DevServer.serve``: records what it would serve, then returns."""

    def __init__(self, started: bool) -> None:
        self.started = started
        self.served: list[tuple[Any, int]] = []

    def __call__(self, application: Any, sock: socket.socket, **kwargs: Any) -> bool:
        with sock:
            self.served.append((application, sock.getsockname()[1]))
        return self.started


class TestLifespanPath:
    def test_serves_the_asgi_application_on_the_announced_port(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """runserver binds the address, prints the bound port and serves the ASGI application with uvicorn."""
        fake = FakeDevServer(started=True)
        monkeypatch.setattr(DevServer, "serve", fake)  # not a method: gets no self
        out = io.StringIO()

        call_command("runserver", "127.0.0.1:0", "--noreload", stdout=out)

        [(application, port)] = fake.served
        assert isinstance(application, LifespanASGIHandler)
        banner = BANNER.search(out.getvalue())
        assert banner is not None
        assert banner[1] == str(port)

    def test_failed_startup_exits_with_1(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When the lifespan startup fails, runserver exits with 1 and says why."""
        fake = FakeDevServer(started=False)
        monkeypatch.setattr(DevServer, "serve", fake)  # not a method: gets no self
        err = io.StringIO()

        with pytest.raises(SystemExit) as exit_info:
            call_command(
                "runserver",
                "127.0.0.1:0",
                "--noreload",
                stdout=io.StringIO(),
                stderr=err,
            )

        assert exit_info.value.code == 1
        assert "lifespan startup failed" in err.getvalue()


class TestRestartWithReloader:
    def test_restarts_the_child_while_it_exits_with_3(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The parent runs the child again each time it exits with 3, returns its first other exit code and restores the signal handlers."""
        runs = tmp_path / "runs"
        script = (
            "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
            "p.write_text(p.read_text() + 'x' if p.exists() else 'x'); "
            "sys.exit(3 if len(p.read_text()) < 3 else 7)"
        )
        monkeypatch.setattr(
            autoreload,
            "get_child_arguments",
            lambda: [sys.executable, "-c", script, str(runs)],
        )
        handlers = [signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)]

        returncode = restart_with_reloader()

        assert returncode == 7
        assert runs.read_text() == "xxx"
        assert [signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)] == (
            handlers
        )


class TestDevServer:
    def test_server_stopped_before_serving_never_starts(self) -> None:
        """A server stopped before it serves returns at once, starts no lifespan, closes the socket and restores the signal handlers."""
        server = DevServer()
        sock = bind("127.0.0.1", 0, ipv6=False)
        handlers = [signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)]
        server.stop()

        served = server.serve(LifespanASGIHandler(), sock)

        assert served is True
        assert sock.fileno() == -1
        assert [signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)] == (
            handlers
        )

    def test_bind_reports_a_port_in_use(self) -> None:
        """Binding a port in use raises OSError and leaks no socket."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]

            with pytest.raises(OSError, match="in use"):
                bind("127.0.0.1", port, ipv6=False)
