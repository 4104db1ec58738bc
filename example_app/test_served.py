"""The example served as the README runs it: uvicorn, lifespan on, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from example_app.upstream import find_quote

REPO_ROOT = Path(__file__).resolve().parent.parent
WAIT_SECONDS = 20.0


@dataclass
class Served:
    """The example under uvicorn: where it listens, its log, its process."""

    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> str:
        """SIGTERM it, wait for it to exit (bounded), and return its log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=WAIT_SECONDS)
                raise
        return self.log_path.read_text()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The example under ``uvicorn --lifespan on``, live; stopped by its PID after."""
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log, socket.socket() as sock:
        # Bind here and hand the socket over: the port is known and never raced for.
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        # No EXAMPLE_UPSTREAM_URL: the example finds its upstream on this port.
        env = {
            **{k: v for k, v in os.environ.items() if k != "EXAMPLE_UPSTREAM_URL"},
            "DJANGO_SETTINGS_MODULE": "example_app.settings",
            "EXAMPLE_DATABASE": str(tmp_path / "example.sqlite3"),
        }
        command = [
            *(sys.executable, "-m", "uvicorn", "example_app.asgi:application"),
            *("--lifespan", "on", "--fd", str(sock.fileno())),
        ]
        server = Served(
            base_url,
            log_path,
            subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=[sock.fileno()],
            ),
        )
    try:
        with httpx.Client(base_url=base_url, timeout=5.0) as client:
            _wait_until_live(client, server.process)
        yield server
    finally:
        server.stop()


@pytest.mark.e2e
def test_uvicorn_serves_the_example_and_closes_its_resources(served: Served) -> None:
    """Under uvicorn on a port of its own (not 8000) the client reaches the upstream
    over HTTP, with no setting pointing it there; SIGTERM closes all."""
    assert not served.base_url.endswith(":8000")

    with httpx.Client(base_url=served.base_url, timeout=5.0) as client:
        quote = client.get("/quotes/1/")
        saved = client.post("/favourites/", data={"number": "2"})
        ready = client.get("/health/ready/")

    log_text = served.stop()
    assert quote.json()["number"] == 1
    assert saved.status_code == 201
    assert ready.status_code == 200
    assert "Stopped 3 resources of Container" in log_text
    assert "Counted in this process: {'quote views': 1, 'upstream 200': 2}" in log_text


@pytest.mark.e2e
def test_the_websocket_consumer_answers_quotes_over_one_connection(
    served: Served,
) -> None:
    """One WebSocket: each number gets its quote, an error leaves the socket open."""
    url = served.base_url.replace("http://", "ws://", 1) + "/ws/quotes/"
    sent = ["1", "3", "9", "two", "2"]
    answers = []
    with connect(url, open_timeout=WAIT_SECONDS, close_timeout=WAIT_SECONDS) as ws:
        for message in sent:
            ws.send(message)
            answers.append(json.loads(ws.recv(timeout=WAIT_SECONDS)))

    log_text = served.stop()
    assert answers == [
        find_quote(1),
        find_quote(3),
        {"error": "The upstream has no quote 9."},
        {"error": "Send a quote number, such as 1."},
        find_quote(2),
    ]
    assert "Stopped 3 resources of Container" in log_text
    # The consumer's injected metrics are the app-wide ones: one count per message,
    # and the http_client's hook counted each upstream answer.
    assert (
        "Counted in this process: "
        "{'quote messages': 5, 'upstream 200': 3, 'upstream 404': 1}"
    ) in log_text


def _wait_until_live(client: httpx.Client, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"uvicorn exited with status {server.returncode}")
        try:
            if client.get("/health/live/").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"uvicorn did not answer within {WAIT_SECONDS} s")
