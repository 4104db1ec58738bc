"""The example's task, run by a real Celery worker next to the example's server.

The worker fetches quotes from the server's upstream with the app-wide
``httpx.AsyncClient`` and saves them in the task's unit of work; the server lists them.
"""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest
from celery import Celery

from tests.processes import RecordedProcess, redis_server

TIMEOUT = 60.0


class Process(RecordedProcess):
    def __init__(self, label: str, workdir: Path) -> None:
        self.label, self.workdir, self.proc = label, workdir, None


@pytest.mark.e2e
def test_a_worker_saves_quotes_the_server_then_lists(tmp_path: Path) -> None:
    """save_quotes saves quotes 1 and 3; one missing upstream saves nothing; each
    worker process starts the resources once and closes them at SIGTERM."""
    server = Process("uvicorn", tmp_path / "server")
    worker = Process("celery worker", tmp_path / "worker")
    with redis_server() as redis, socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        env = {
            "DJANGO_SETTINGS_MODULE": "example_app.settings",
            "EXAMPLE_DATABASE": str(tmp_path / "example.sqlite3"),
            "EXAMPLE_UPSTREAM_URL": f"{base_url}/upstream/",
            "EXAMPLE_BROKER_URL": f"redis+socket://{redis}",
        }
        client = Celery(
            broker=env["EXAMPLE_BROKER_URL"], backend=env["EXAMPLE_BROKER_URL"]
        )
        try:
            server.spawn(
                [sys.executable, "-m", "uvicorn", "example_app.asgi:application",
                 "--lifespan", "on", "--fd", str(sock.fileno())],
                env,
                pass_fds=[sock.fileno()],
            )  # fmt: skip
            worker.spawn(
                [sys.executable, "-m", "celery", "--app=example_app", "worker",
                 "--pool=prefork", "--concurrency=2", "--loglevel=INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                env,
            )  # fmt: skip

            saved = client.send_task("example_app.tasks.save_quotes", args=[[1, 3]])
            missing = client.send_task("example_app.tasks.save_quotes", args=[[2, 9]])
            assert saved.get(timeout=TIMEOUT) == 2, worker.log()
            with pytest.raises(LookupError, match="no quote 9"):
                missing.get(timeout=TIMEOUT)
            listed = httpx.get(f"{base_url}/favourites/", timeout=10.0).json()
        finally:
            for process in (worker, server):
                if process.proc is not None:
                    process.send_signal(signal.SIGTERM)
            status = worker.wait_exit()
            server.wait_exit()
            worker.stop()
            server.stop()
            client.close()

    assert [quote["number"] for quote in listed["favourites"]] == [1, 3]
    assert status == 0, worker.log()
    # Two children, each starting and stopping every resource once (the lines of
    # the example's own log handler; Celery's repeats them, with a prefix).
    lines = worker.log().splitlines()
    for resource in ("metrics", "http_client", "database"):
        for event in ("Started", "Stopped"):
            line = f"{event} resource Container.{resource} "
            assert sum(text.startswith(line) for text in lines) == 2, worker.log()
