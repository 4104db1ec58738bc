"""The README's quick start, built as a user would build it and served by uvicorn.

The project is made at test time from exactly what README.md's "Quick start" section
shows, so that the README cannot drift: its console commands (``django-admin
startproject``, ``uvicorn``) are run, and each Python block whose first line is
``# myproject/<file>.py`` is that file: new, or written over the generated one
(``: replaces the generated file``), or appended to it (``: add at the end``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.processes import EXIT_TIMEOUT, READY_TIMEOUT, REPO_ROOT, TEST_ENV_PREFIX
from tests.servers.harness import Server, Spec

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
FILE_MARKER = re.compile(r"# (?P<path>myproject/[\w/]+\.py)(?:: (?P<how>.+))?")
APPEND = "add at the end"
REPLACE = "replaces the generated file"
PROJECT = "django-lifespan-di"
SIGTERM_EXIT = -signal.SIGTERM


def quick_start() -> str:
    """The README's "Quick start" section, up to the next section."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Quick start\n")
    return text[start : text.index("\n## ", start + 1)]


def code_blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(text) if lang == language]


def command(prefix: str) -> list[str]:
    """The quick start's one console command that starts with ``prefix``."""
    found = [
        shlex.split(line)
        for block in code_blocks(quick_start(), "console")
        for line in block.splitlines()
        if line.startswith(prefix)
    ]
    assert len(found) == 1, f"README's quick start: {len(found)} lines start {prefix!r}"
    return found[0]


def project_files() -> dict[str, tuple[str, bool]]:
    """Each file the quick start shows: its text, and whether it is appended."""
    files = {}
    for block in code_blocks(quick_start(), "python"):
        first = block.partition("\n")[0]
        if not first.startswith("# myproject/"):
            continue  # an excerpt, not a file of the project
        marker = FILE_MARKER.fullmatch(first)
        assert marker is not None, f"README: a block starts {first!r}"
        assert marker["how"] in (None, APPEND, REPLACE), f"README: {first!r}"
        files[marker["path"]] = (block, marker["how"] == APPEND)
    return files


def project_env() -> dict[str, str]:
    """This process's environment, less what would point a child at the test project."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")
        and not key.startswith(TEST_ENV_PREFIX)
    }


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env=project_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh project: ``django-admin startproject``, then the README's files."""
    directory = tmp_path_factory.mktemp("quickstart")
    startproject = command("django-admin startproject")
    created = run([sys.executable, "-m", "django", *startproject[1:]], directory)
    assert created.returncode == 0, created.stderr
    for name, (text, append) in project_files().items():
        path = directory / name
        if append:
            text = path.read_text(encoding="utf-8") + "\n" + text
        path.write_text(text, encoding="utf-8")
    return directory


@dataclass
class ProjectServer(Server):
    """A server of the project, started in its directory as a user starts it.

    ``args`` follow ``python``; the address comes after them, as the harness gives
    it: the listening socket as ``--fd`` (``bind="fd"``), or ``127.0.0.1:<port>`` of
    a reserved port (``bind="port"``). The process's output goes to
    ``<project>/log``; the harness's ``stop()`` ends its process group.
    """

    args: tuple[str, ...] = ()

    def start(self) -> ProjectServer:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
            self.log_path.open("wb") as log,
        ):
            sock.setsockopt(socket.SOL_SOCKET, self.spec.reuse, 1)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            self.base_url = f"http://127.0.0.1:{port}"
            if self.spec.bind == "fd":
                sock.listen()
                address = ["--fd", str(sock.fileno())]
            else:
                address = [f"127.0.0.1:{port}"]
                self._reserved = sock.dup()
            self.proc = subprocess.Popen(
                [sys.executable, *self.args, *address],
                cwd=self.workdir,
                env={**project_env(), "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=[sock.fileno()] if self.spec.bind == "fd" else [],
                # Its own process group, which stop() ends as a whole.
                start_new_session=True,
            )
        return self

    def first_response(self, path: str) -> httpx.Response:
        """GET ``path`` as soon as the server accepts (bounded); fail if it exits first.

        A passed socket listens from the start: the request waits in its backlog
        until the lifespan has started and the server accepts.
        """
        assert self.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        with self.client(timeout=READY_TIMEOUT) as client:
            while True:
                try:
                    return client.get(path)
                except httpx.TransportError as error:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        msg = f"{self.label} did not answer {path}:\n{self.log()}"
                        raise AssertionError(msg) from error
                time.sleep(0.05)


def installed_by(arguments: list[str]) -> set[str]:
    """The distributions ``pip install <arguments>`` installs, without their own dependencies.

    For this project: its dependencies and those of the extras asked for, read from
    pyproject.toml.
    """
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))
    metadata = pyproject["project"]
    names = set()
    for argument in arguments:
        requirement = Requirement(argument)
        names.add(requirement.name)
        if canonicalize_name(requirement.name) == PROJECT:
            names.update(Requirement(line).name for line in metadata["dependencies"])
            for extra in requirement.extras:
                lines = metadata["optional-dependencies"][extra]
                names.update(Requirement(line).name for line in lines)
    return {canonicalize_name(name) for name in names}


def test_the_install_line_installs_what_the_project_imports_and_its_server() -> None:
    """The quick start's pip command installs every package its files import, and uvicorn."""
    imported = {
        match[1]
        for text, _append in project_files().values()
        for match in re.finditer(r"^(?:from|import) (\w+)", text, re.MULTILINE)
    }
    third_party = imported - set(sys.stdlib_module_names) - {"myproject"}
    distributions = importlib.metadata.packages_distributions()

    needed = {canonicalize_name(distributions[name][0]) for name in third_party}
    needed.add(canonicalize_name(command("uvicorn ")[0]))

    assert needed == {PROJECT, "django", "dependency-injector", "httpx", "uvicorn"}
    assert needed <= installed_by(command("pip install")[2:])


@pytest.mark.e2e
def test_check_finds_no_issues_in_the_quick_start_project(project: Path) -> None:
    """The quick start's settings pass ``manage.py check``: no W001, lifespan_di's runserver wins."""
    result = run([sys.executable, "manage.py", "check"], project)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "System check identified no issues (0 silenced).\n"


def uvicorn_server(project: Path) -> ProjectServer:
    """The quick start's uvicorn command, as the README shows it."""
    args = command("uvicorn ")
    spec = Spec("uvicorn", "uvicorn", "uvicorn", tuple(args[1:]), "fd")
    return ProjectServer(spec, project, args=("-m", *args))


def runserver(project: Path) -> ProjectServer:
    """``manage.py runserver``, which the README says serves the project with uvicorn."""
    spec = Spec("runserver", "runserver", "django", ("--noreload",), "port")
    return ProjectServer(spec, project, args=("manage.py", "runserver", "--noreload"))


@pytest.mark.e2e
@pytest.mark.parametrize(
    "server_for", [uvicorn_server, runserver], ids=["uvicorn", "runserver"]
)
def test_the_quick_start_project_serves_its_first_request(
    project: Path, server_for: Callable[[Path], ProjectServer]
) -> None:
    """Served as the README says, the project answers what the README shows and logs each resource's start and close."""
    promised = re.search(r"answers `(\{.*?\})`", quick_start())
    assert promised is not None, "the quick start shows no answer"
    server = server_for(project)

    try:
        response = server.start().first_response("/")
        server.send_signal(signal.SIGTERM)
        returncode = server.wait_exit(EXIT_TIMEOUT)
    finally:
        server.stop()

    assert response.status_code == 200, server.log()
    assert response.json() == json.loads(promised[1])
    assert "Started resource Container.httpx_client in " in server.log()
    assert "Stopped resource Container.httpx_client in " in server.log()
    # uvicorn, also under runserver --noreload, raises SIGTERM again once shut down.
    assert returncode == SIGTERM_EXIT, server.log()


def test_the_docs_quick_start_shows_the_readme_logging() -> None:
    """docs/quickstart.md shows the same LOGGING lines as the README, where it promises the log."""
    settings, _append = project_files()["myproject/settings.py"]
    logging = settings[settings.index("LOGGING = {") :]
    logging = logging[: logging.index("\n}\n") + 2]

    assert logging in (DOCS / "quickstart.md").read_text(encoding="utf-8")


def installed_apps_examples() -> list[tuple[str, list[str]]]:
    """Each INSTALLED_APPS example of the README and the docs: its page, its entries.

    Entries are the list's string literals and ``...``, in order; a diff counts as
    its result. ``INSTALLED_APPS.insert(0, app)`` counts as ``[app, ...]``, and
    ``.append(app)`` or ``+= [app]`` as ``[..., app]``.
    """
    found = []
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        for language, body in BLOCK.findall(page.read_text(encoding="utf-8")):
            lines = body.splitlines()
            if language == "diff":
                lines = [line[1:] for line in lines if not line.startswith("-")]
            code = "\n".join(lines)
            for listing in re.findall(r"INSTALLED_APPS = \[(.*?)\]", code, re.DOTALL):
                found.append((page.name, re.findall(r'"[^"]*"|\.\.\.', listing)))
            for app in re.findall(r'INSTALLED_APPS\.insert\(0, ("[^"]*")\)', code):
                found.append((page.name, [app, "..."]))
            for app in re.findall(r'INSTALLED_APPS\.append\(("[^"]*")\)', code):
                found.append((page.name, ["...", app]))
            for listing in re.findall(r"INSTALLED_APPS \+= \[(.*?)\]", code, re.DOTALL):
                found.append((page.name, ["...", *re.findall(r'"[^"]*"', listing)]))
    return found


def test_every_installed_apps_example_puts_lifespan_di_first() -> None:
    """Every INSTALLED_APPS example with lifespan_di lists it first, so that no other app's runserver wins."""
    examples = [
        (page, entries)
        for page, entries in installed_apps_examples()
        if '"lifespan_di"' in entries
    ]

    assert {"README.md", "migrating.md"} <= {page for page, _entries in examples}
    assert [(page, e) for page, e in examples if e[0] != '"lifespan_di"'] == []
