"""Fixtures of the server matrix: start servers on demand, stop every one by PID."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers.harness import Server, Spec

Launch = Callable[..., Server]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start servers on demand; each is stopped (its whole process group) at teardown."""
    servers: list[Server] = []

    def start(spec: Spec, *, extra: tuple[str, ...] = (), **env: str) -> Server:
        server = Server(spec, tmp_path / f"{spec.id}-{len(servers)}", env, extra)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
