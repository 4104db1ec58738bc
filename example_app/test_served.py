"""The example served as the README runs it: uvicorn, lifespan on, on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
WAIT_SECONDS = 20.0


@pytest.mark.e2e
def test_uvicorn_serves_the_example_and_closes_its_resources(tmp_path: Path) -> None:
    """Under uvicorn the client reaches the upstream over HTTP; SIGTERM closes all."""
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log, socket.socket() as sock:
        # Bind here and hand the socket over: the port is known and never raced for.
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "example_app.settings",
            "EXAMPLE_DATABASE": str(tmp_path / "example.sqlite3"),
            "EXAMPLE_UPSTREAM_URL": f"{base_url}/upstream/",
        }
        command = [
            *(sys.executable, "-m", "uvicorn", "example_app.asgi:application"),
            *("--lifespan", "on", "--fd", str(sock.fileno())),
        ]
        server = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=[sock.fileno()],
        )
    try:
        with httpx.Client(base_url=base_url, timeout=5.0) as client:
            _wait_until_live(client, server)
            quote = client.get("/quotes/1/")
            saved = client.post("/favourites/", data={"number": "2"})
            ready = client.get("/health/ready/")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise

    log_text = log_path.read_text()
    assert quote.json()["number"] == 1
    assert saved.status_code == 201
    assert ready.status_code == 200
    assert "Stopped 3 resources of Container" in log_text
    assert "Counted in this process: {'quote views': 1, 'upstream 200': 2}" in log_text


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
