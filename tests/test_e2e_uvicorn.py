"""End to end: a real uvicorn process serves the test project over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Bounds on waits, not on what the tests prove. CI runs the py311 and py312 suites side
# by side on 2 cores: under coverage and dev mode, uvicorn on Python 3.12 took up to
# 21 s to serve its first request there, and 20 s to exit after a failed startup.
READY_TIMEOUT = 60.0
EXIT_TIMEOUT = 60.0
RESOURCES = ("httpx_client", "counter")
# uvicorn (>= 0.29) shuts down gracefully on SIGTERM, then re-raises the signal so
# that the process ends as killed by it: a clean stop has return code -SIGTERM, not 0.
# "Application shutdown complete." in stderr tells it apart from a hard kill.
SIGTERM_EXIT = -signal.SIGTERM
CLEAN_SHUTDOWN = "Application shutdown complete."


class Server:
    """One uvicorn process serving ``tests.project.asgi:application``."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        fail: str | None = None,
        traced: bool = True,
    ) -> None:
        name = f"server-{fail or 'ok'}"
        self.record_path = tmp_path / f"{name}.record"
        self.stdout_path = tmp_path / f"{name}.stdout"
        self.stderr_path = tmp_path / f"{name}.stderr"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.project.settings",
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
            "LIFESPAN_DI_TEST_RECORD": str(self.record_path),
        }
        env.pop("LIFESPAN_DI_TEST_FAIL", None)
        if not traced:
            # Neither coverage's tracing nor asyncio's debug mode (PYTHONDEVMODE, as
            # CI runs): under both, uvicorn served 12-61 requests/s here, which is no
            # load at all. The other end-to-end tests run these code paths traced.
            for variable in (
                "COVERAGE_PROCESS_CONFIG",
                "COVERAGE_PROCESS_START",
                "PYTHONDEVMODE",
            ):
                env.pop(variable, None)
        if fail is not None:
            env["LIFESPAN_DI_TEST_FAIL"] = fail
        # The child gets its own copies of the files and of the listening socket, so
        # the parent closes its ones at once: nothing to leak, and no port race.
        with (
            self.stdout_path.open("wb") as stdout,
            self.stderr_path.open("wb") as stderr,
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        ):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            fd = sock.fileno()
            self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "tests.project.asgi:application",
                    "--fd",
                    str(fd),
                    "--lifespan",
                    "on",
                    "--no-access-log",
                ],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                pass_fds=[fd],
            )

    def wait_ready(self) -> None:
        """Poll GET /plain/ until it answers 200; fail if the process exits or READY_TIMEOUT passes."""
        deadline = time.monotonic() + READY_TIMEOUT
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    pytest.fail(
                        f"uvicorn exited with {self.proc.returncode} before serving:\n"
                        f"{self.stderr()}"
                    )
                try:
                    if client.get("/plain/").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        pytest.fail(f"uvicorn did not serve within {READY_TIMEOUT} s:\n{self.stderr()}")

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def sigterm(self) -> int:
        """Send SIGTERM and return the exit code (bounded wait)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def wait_exit(self) -> int:
        try:
            return self.proc.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"uvicorn did not exit within {EXIT_TIMEOUT} s:\n{self.stderr()}"
            )

    def records(self) -> list[str]:
        if not self.record_path.exists():
            return []
        return self.record_path.read_text(encoding="utf-8").splitlines()

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Stop the process by its PID if it still runs: terminate, then kill."""
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_TIMEOUT)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start uvicorn processes on demand; every one is stopped at teardown."""
    servers: list[Server] = []

    def start(**options: str) -> Server:
        server = Server(tmp_path, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(launch: Callable[..., Server]) -> Server:
    """A uvicorn process that has started its resources and serves requests."""
    server = launch()
    server.wait_ready()
    return server


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.mark.e2e
def test_views_see_state_and_injected_resources(client: httpx.Client) -> None:
    """Sync, async and class-based views get the started resources, one object per process, from inject and request.state."""

    async_inject = client.get("/async-inject/").json()
    sync_inject = client.get("/sync-inject/").json()
    sync_state = client.get("/sync-state/").json()
    greet = client.get("/greet/").json()

    assert async_inject["client_type"] == "AsyncClient"
    assert async_inject["same_client"] is True
    assert async_inject["state_client"] == async_inject["client"]
    assert sync_inject["client_type"] == "AsyncClient"
    assert sync_inject["greeter_type"] == "Greeter"
    assert sync_state["same_by_attribute"] is True
    assert "httpx_client" in sync_state["keys"]
    assert "counter" in sync_state["keys"]
    assert not [key for key in sync_state["keys"] if key.startswith("lifespan_di")]
    assert greet == {"greeting": "Hello, class-based!"}
    assert sync_state["client"] == async_inject["client"]


@pytest.mark.e2e
def test_sigterm_stops_every_started_resource_once(server: Server) -> None:
    """On SIGTERM uvicorn shuts down gracefully after every started resource was stopped exactly once."""
    with server.client() as client:
        served = client.get("/sync-inject/")

    exit_code = server.sigterm()

    records = server.records()
    assert served.status_code == 200
    assert exit_code == SIGTERM_EXIT, server.stderr()
    assert CLEAN_SHUTDOWN in server.stderr()
    assert set(records[:2]) == {f"start:{name}" for name in RESOURCES}
    assert set(records[2:]) == {f"stop:{name}" for name in RESOURCES}
    assert len(records) == 4
    events = Counter(records)
    assert all(events[f"start:{n}"] == events[f"stop:{n}"] == 1 for n in RESOURCES)


@pytest.mark.e2e
def test_sigterm_lets_in_flight_request_finish_before_teardown(server: Server) -> None:
    """A request in flight when SIGTERM arrives completes with 200, then the resources are stopped and uvicorn shuts down gracefully."""
    with server.client() as client, ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(client.get, "/slow/", params={"seconds": "1.5"})
        time.sleep(0.3)

        exit_code = server.sigterm()
        response = in_flight.result(timeout=EXIT_TIMEOUT)

    stderr = server.stderr()
    assert response.status_code == 200
    assert response.json() == {"slept": True}
    assert "Waiting for connections to close" in stderr  # it was in flight
    assert exit_code == SIGTERM_EXIT, stderr
    assert CLEAN_SHUTDOWN in stderr
    records = server.records()
    assert set(records[2:]) == {f"stop:{name}" for name in RESOURCES}
    assert len(records) == 4


@pytest.mark.e2e
def test_resource_failing_at_startup_stops_uvicorn(
    launch: Callable[..., Server],
) -> None:
    """A resource that raises at startup makes uvicorn exit non-zero by itself, naming the resource and rolling back what had started."""
    server = launch(fail="counter")

    exit_code = server.wait_exit()

    stderr = server.stderr()
    records = server.records()
    assert exit_code > 0, stderr  # exited by itself (uvicorn uses 3), not killed
    assert "Container.counter" in stderr
    assert "cannot connect" in stderr
    assert "Application startup failed" in stderr
    assert "start:counter" not in records
    if "start:httpx_client" in records:
        assert records.count("stop:httpx_client") == 1


def request_events(records: list[str], kind: str) -> Counter[str]:
    """Count ``kind`` events (open, commit, close, rollback) per request resource instance."""
    return Counter(
        ":".join(line.split(":")[1:3])
        for line in records
        if line.startswith(f"{kind}:")
    )


@pytest.mark.e2e
def test_200_concurrent_requests_each_get_their_own_request_resources(
    server: Server,
) -> None:
    """200 concurrent requests over HTTP each open, commit and close their own request resources once, while the app resources stay open."""
    with (
        httpx.Client(
            base_url=server.base_url,
            timeout=30.0,
            limits=httpx.Limits(max_connections=200),
        ) as client,
        ThreadPoolExecutor(max_workers=200) as pool,
    ):
        responses = list(
            pool.map(
                lambda _: client.get("/request/async/", params={"sleep": "0.2"}),
                range(200),
            )
        )
    # A new connection: uvicorn closes keep-alive connections idle for 5 s, which
    # the first of the 200 can be by now on a slow machine.
    with server.client() as client:
        after = client.get("/async-inject/")

    bodies = [response.json() for response in responses]
    records = server.records()
    opened = request_events(records, "open")
    assert [response.status_code for response in responses] == [200] * 200
    assert len({body["async_session"] for body in bodies}) == 200
    assert len({body["session"] for body in bodies}) == 200
    assert all(body["state_shares"] and body["state_sync_shares"] for body in bodies)
    assert len(opened) == 400
    assert set(opened.values()) == {1}
    assert request_events(records, "commit") == opened
    assert request_events(records, "close") == opened
    assert records.count("start:httpx_client") == 1
    assert "stop:httpx_client" not in records
    assert after.status_code == 200


@pytest.mark.e2e
def test_streaming_response_closes_request_resource_after_last_chunk(
    client: httpx.Client, server: Server
) -> None:
    """A streamed body reads its request resource in every chunk; it is committed and closed after the last one."""
    with client.stream(
        "GET", "/request/stream/", params={"chunks": "20", "delay": "0.02"}
    ) as response:
        body = response.iter_lines()
        first = next(body)
        session = first.split(":")[1]
        closed_while_streaming = request_events(server.records(), "close")
        lines = [first, *(line for line in body if line)]

    assert response.status_code == 200
    assert len(lines) == 20
    assert all(line.endswith(":open") for line in lines)
    assert f"async_session:{session}" not in closed_while_streaming
    assert wait_for_record(server, f"close:async_session:{session}")
    assert f"commit:async_session:{session}" in server.records()


@pytest.mark.e2e
def test_view_exception_rolls_back_and_answers_500(
    client: httpx.Client, server: Server
) -> None:
    """A view that raises answers 500; its request resource is rolled back with the exception and closed."""
    response = client.get("/request/fail/")

    assert response.status_code == 500
    [opened] = [line for line in server.records() if line.startswith("open:session:")]
    session = opened.split(":")[2]
    assert wait_for_record(server, f"close:session:{session}")
    records = server.records()
    assert f"rollback:session:{session}:ValueError" in records
    assert f"commit:session:{session}" not in records


@pytest.mark.e2e
def test_client_disconnect_mid_stream_closes_request_resource(
    client: httpx.Client, server: Server
) -> None:
    """A client that disconnects mid-stream ends the body; the request resource still closes, seeing RequestAborted."""
    with client.stream(
        "GET", "/request/stream/", params={"chunks": "1000", "delay": "0.01"}
    ) as response:
        first = next(line for line in response.iter_lines() if line)
    session = first.split(":")[1]

    assert wait_for_record(server, f"close:async_session:{session}")
    assert f"rollback:async_session:{session}:RequestAborted" in server.records()


def wait_for_record(server: Server, line: str, timeout: float = 10.0) -> bool:
    """Wait (bounded) until the server process recorded ``line``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if line in server.records():
            return True
        time.sleep(0.02)
    return False


LOAD_REQUESTS = 5000
LOAD_CONNECTIONS = 64
# Each request is bounded, not the whole load, which takes as long as this machine's
# load makes it: a request unanswered this long fails the test at once.
REQUEST_TIMEOUT = 30.0


def load(base_url: str, requests: int, connections: int) -> list[tuple[int, Any]]:
    """Send ``requests`` GET /load/ over ``connections`` keep-alive connections.

    A minimal HTTP/1.1 client on asyncio streams: httpx costs the client more CPU
    per request than Django costs the server, and both share this machine's cores.
    Returns ``(status, JSON body)`` per request, in the order they were sent.
    """
    host, port = base_url.removeprefix("http://").split(":")

    async def get(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
    ) -> tuple[int, Any]:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:  # chunked: Django sets no Content-Length without CommonMiddleware
            body = b""
            while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
                body += await reader.readexactly(size + 2)
                body = body[:-2]
            await reader.readuntil(b"\r\n")
        return status, json.loads(body) if status == 200 else None

    async def run() -> list[tuple[int, Any]]:
        results: list[tuple[int, Any]] = [(0, None)] * requests
        next_index = iter(range(requests))

        async def worker() -> None:
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                for index in next_index:
                    results[index] = await asyncio.wait_for(
                        get(reader, writer, f"/load/?token={index}"), REQUEST_TIMEOUT
                    )
            finally:
                writer.close()
                await writer.wait_closed()

        await asyncio.gather(*(worker() for _ in range(connections)))
        return results

    return asyncio.run(run())


@pytest.mark.e2e
def test_load_keeps_every_request_apart(launch: Callable[..., Server]) -> None:
    """5,000 requests at 64 connections: no 5xx, request.state writes stay in their request, app resources start once, every request resource opens and closes once."""
    # What the requests get, never how fast: requests/s and latency next to bare
    # Django come from benchmarks/http_load.py, which interleaves them in one run
    # (docs/benchmarks.md, "Over HTTP"). Untraced: traced, uvicorn serves too few
    # requests/s to load it.
    server = launch(traced=False)
    server.wait_ready()

    warm_up = load(server.base_url, 200, LOAD_CONNECTIONS)
    results = load(server.base_url, LOAD_REQUESTS, LOAD_CONNECTIONS)
    exit_code = server.sigterm()

    records = server.records()
    opened = request_events(records, "open")
    assert [status for status, _ in warm_up + results] == [200] * (LOAD_REQUESTS + 200)
    assert [body["seen"] for _, body in results] == [None] * LOAD_REQUESTS
    assert all(body["kept"] for _, body in results)
    assert len({body["session"] for _, body in results}) == LOAD_REQUESTS
    assert records.count("start:httpx_client") == records.count("start:counter") == 1
    assert len(opened) == LOAD_REQUESTS + 200
    assert set(opened.values()) == {1}
    assert request_events(records, "close") == opened
    assert request_events(records, "commit") == opened
    assert exit_code == SIGTERM_EXIT
    assert records.count("stop:httpx_client") == records.count("stop:counter") == 1


def test_no_test_prints_figures_past_the_capture() -> None:
    """No test prints past pytest's output capture: figures belong to benchmarks/."""
    sources = [*REPO_ROOT.glob("tests/**/*.py"), *REPO_ROOT.glob("example_app/**/*.py")]
    needle = "." + "disabled()"  # spelled apart, so that this file does not match

    printing = [
        str(path.relative_to(REPO_ROOT))
        for path in sources
        if needle in path.read_text(encoding="utf-8")
    ]

    assert printing == []
