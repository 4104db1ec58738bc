"""docs/deploying.md shows exactly the command lines the server matrix runs."""

from __future__ import annotations

import re

import pytest

from tests.processes import REPO_ROOT
from tests.servers.harness import LIFESPAN_SERVERS
from tests.servers.test_matrix import FAILED_STARTUP_EXIT, FAILED_STARTUP_LOG

pytestmark = pytest.mark.servers

PAGE = REPO_ROOT / "docs" / "deploying.md"
PROGRAMS = {spec.program for spec in LIFESPAN_SERVERS}


def documented_commands() -> list[str]:
    """The lines of the page's ``console`` blocks that run a server."""
    blocks = re.findall(r"```console\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.split(" ", 1)[0] in PROGRAMS
    ]


def test_page_shows_the_command_line_of_every_tested_server() -> None:
    """Every server of the matrix appears on the page with the command line its tests run."""
    commands = documented_commands()

    assert commands == [spec.documented() for spec in LIFESPAN_SERVERS]


def test_page_states_each_measured_failure_exit_status() -> None:
    """The page's table names the exit status and log line each server was measured to give on a failed startup."""
    rows = {
        row.split("|")[1].strip(): row
        for row in PAGE.read_text(encoding="utf-8").splitlines()
        if row.startswith(("| `", "| gunicorn"))
    }
    labels = {
        "uvicorn": "`uvicorn`",
        "uvicorn-workers": "`uvicorn --workers 2`",
        "gunicorn-uvicorn": "gunicorn + `UvicornWorker`",
        "gunicorn-asgi": "`gunicorn -k asgi`",
        "hypercorn": "`hypercorn`",
        "granian": "`granian --interface asgi`",
    }

    for spec in LIFESPAN_SERVERS:
        row = rows[labels[spec.id]]
        failure = row.split("|")[2]
        assert f"exits {max(FAILED_STARTUP_EXIT[spec.id])}" in failure, spec.id
        assert FAILED_STARTUP_LOG[spec.id].split("[")[0].strip() in failure, spec.id
