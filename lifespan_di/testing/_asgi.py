"""Drive an ASGI application as a server does, for the lifespan test clients.

``_Application`` runs the application's lifespan (startup, shutdown, the failure
answers turned into ``StartupError`` / ``ShutdownError``) and sends each request
through it on the loop the resources live on, answering with a Django test
response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from io import BytesIO
from typing import IO, Any, TypeVar, cast

from asgiref.typing import ASGI3Application, ASGIReceiveEvent, ASGISendEvent
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, HttpResponseBase
from django.test.client import conditional_content_removal

from lifespan_di.core.lifespan import ContainerLifespan, running_lifespan
from lifespan_di.core.loop import LoopThread
from lifespan_di.exceptions import ConfigurationError, ShutdownError, StartupError
from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.state import State

T = TypeVar("T")


# --- the application, as a server drives it --------------------------------------


@dataclass
class _Exchange:
    """What ``_TestApplication`` needs to know about, and records from, one request."""

    enforce_csrf_checks: bool
    request: ASGIRequest | None = None


_EXCHANGE: ContextVar[_Exchange | None] = ContextVar("lifespan_di_test", default=None)


class _TestApplication(LifespanASGIHandler):
    """The default application: the project's, plus Django's test-client conveniences.

    Like ``AsyncClientHandler`` it skips CSRF checks unless asked, and it hands the
    request the view saw to the response.
    """

    def create_request(
        self, scope: Mapping[str, Any], body_file: IO[bytes]
    ) -> tuple[ASGIRequest, None] | tuple[None, HttpResponseBase]:
        created = super().create_request(scope, body_file)
        exchange = _EXCHANGE.get()
        request = created[0]
        if request is not None and exchange is not None:
            request._dont_enforce_csrf_checks = not exchange.enforce_csrf_checks  # type: ignore[attr-defined]
            exchange.request = request
        return created


class _Application:
    """An ASGI application, its lifespan, and the event loop its resources live on."""

    def __init__(self, app: ASGI3Application | None) -> None:
        self.app: ASGI3Application = app if app is not None else _TestApplication()
        self.thread: LoopThread | None = None
        """The private loop thread of a ``LifespanClient`` block."""
        self.loop: asyncio.AbstractEventLoop | None = None
        self._state: dict[str, Any] | None = None
        self._task: asyncio.Future[None] | None = None
        self._receive: asyncio.Queue[ASGIReceiveEvent] = asyncio.Queue()
        self._send: asyncio.Queue[ASGISendEvent] = asyncio.Queue()

    async def startup(self) -> None:
        if self._task is not None:
            msg = "Cannot start the lifespan: this client's lifespan already runs."
            raise RuntimeError(msg)
        scope: dict[str, Any] = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": {},
        }
        self._receive, self._send = asyncio.Queue(), asyncio.Queue()
        task = self._task = asyncio.ensure_future(
            self.app(cast("Any", scope), self._receive.get, self._send.put)
        )
        try:
            reply = await self._exchange("lifespan.startup")
            if reply["type"] != "lifespan.startup.complete":
                await task  # the application ends its lifespan after a failure
        except BaseException:
            await _cancelled(task)
            self._task = None
            raise
        if reply["type"] != "lifespan.startup.complete":
            self._task = None
            raise _startup_error(self.app, reply)
        self._state = scope["state"]
        self.loop = asyncio.get_running_loop()

    async def shutdown(self) -> None:
        task = self._task
        if task is None:
            return
        try:
            reply = await self._exchange("lifespan.shutdown")
            await task
        finally:
            self._task = self._state = self.loop = None
        if reply["type"] != "lifespan.shutdown.complete":
            raise _shutdown_error(self.app, reply)

    async def _exchange(self, message_type: str) -> ASGISendEvent:
        """Send a lifespan message; return the answer, or raise if none comes."""
        task = self._task
        assert task is not None
        await self._receive.put(cast("ASGIReceiveEvent", {"type": message_type}))
        answer = asyncio.ensure_future(self._send.get())
        waiters: set[asyncio.Future[Any]] = {answer, task}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not answer.done():
                answer.cancel()
        if answer.done():
            return answer.result()
        error = task.exception() if not task.cancelled() else None
        ended = "returned" if error is None else f"raised {error!r}"
        msg = (
            f"Cannot run the lifespan of {self.app!r}: it {ended} instead of "
            f"answering {message_type!r}. Pass an application that supports the "
            "ASGI lifespan protocol, such as lifespan_di.get_asgi_application()."
        )
        raise ConfigurationError(msg) from error

    def request_state(self) -> dict[str, Any]:
        """A fresh shallow copy of the lifespan state, for one request's scope."""
        if self._state is None:
            # Like a server whose lifespan did not run; the middleware then falls
            # back to a lifespan running in the process, if any.
            return {}
        lifespan = running_lifespan(state=self._state)
        # The lifespan's own dict, so that `override` is seen by the next request.
        return dict(lifespan.state if lifespan is not None else self._state)

    def current_state(self) -> State:
        if self._state is None:
            msg = (
                "Cannot read the client's lifespan state: its lifespan does not run. "
                "Enter the client with `with` / `async with` first."
            )
            raise RuntimeError(msg)
        return State(self.request_state())

    async def serve(
        self, scope: dict[str, Any], body: bytes, enforce_csrf_checks: bool
    ) -> HttpResponse:
        """Send one request through the application; return its response."""
        scope["state"] = self.request_state()
        exchange = _Exchange(enforce_csrf_checks)
        token = _EXCHANGE.set(exchange)
        try:
            status, headers, content = await _call(self.app, scope, body)
        finally:
            _EXCHANGE.reset(token)
        response = _response(status, headers, content)
        request = exchange.request or ASGIRequest(scope, BytesIO(body))
        conditional_content_removal(request, response)  # as a server would
        response.asgi_request = request  # type: ignore[attr-defined]
        return response

    async def arun(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await ``coroutine`` on the loop the resources live on."""
        loop = self.loop
        if loop is None or loop is asyncio.get_running_loop():
            return await coroutine
        if not loop.is_running():
            coroutine.close()
            msg = (
                "Cannot send the request: the lifespan's resources live on another "
                "event loop, which is not running. Run the test on the loop the "
                "client was started on (with pytest-asyncio, give fixtures and tests "
                "the same loop scope)."
            )
            raise RuntimeError(msg)
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return await asyncio.wrap_future(future)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the block's loop thread, from sync code."""
        if self.thread is None:
            coroutine.close()
            msg = (
                "Cannot send a request with LifespanClient outside its block: use "
                "`with LifespanClient() as client:` (or the lifespan_client fixture), "
                "so that one event loop owns the resources for every request."
            )
            raise RuntimeError(msg)
        return self.thread.run(coroutine)


async def _call(
    app: ASGI3Application, scope: dict[str, Any], body: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run one HTTP request through ``app``; return status, headers and body."""
    sent = False
    finished = asyncio.Event()
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> ASGIReceiveEvent:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()  # a client disconnects once it has the response
        return {"type": "http.disconnect"}

    async def send(message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                finished.set()

    await app(cast("Any", scope), receive, send)
    if not start:
        msg = f"{app!r} returned without sending a response to {scope['path']!r}."
        raise RuntimeError(msg)
    return start["status"], list(start.get("headers", [])), b"".join(chunks)


def _response(
    status: int, headers: Iterable[tuple[bytes, bytes]], content: bytes
) -> HttpResponse:
    response = HttpResponse(content, status=status)
    del response.headers["Content-Type"]
    for raw_name, raw_value in headers:
        name, value = raw_name.decode("latin1"), raw_value.decode("latin1")
        if name.lower() == "set-cookie":
            response.cookies.load(value)
        elif name in response.headers:
            response.headers[name] = f"{response.headers[name]}, {value}"
        else:
            response.headers[name] = value
    if (
        "Location" in response.headers
    ):  # what HttpResponseRedirect offers; follow= uses it
        response.url = response.headers["Location"]  # type: ignore[attr-defined]
    return response


def _startup_error(app: ASGI3Application, reply: ASGISendEvent) -> Exception:
    original = getattr(app, "startup_error", None)
    if isinstance(original, Exception):
        return original  # lifespan_di's own handler: the error itself, rollback and all
    message = str(reply.get("message", ""))
    msg = f"Cannot start the lifespan of the application: it answered {reply['type']!r}"
    msg += f": {message}" if message else "."
    resource, cause = "", None
    lifespan = getattr(app, "lifespan", None)
    if isinstance(lifespan, ContainerLifespan):
        for record in lifespan.records.values():
            if record.status == "failed":
                resource, cause = record.path, record.error
                break
    error = StartupError(msg, resource=resource, rolled_back=())
    error.__cause__ = cause
    return error


def _shutdown_error(app: ASGI3Application, reply: ASGISendEvent) -> ShutdownError:
    message = str(reply.get("message", ""))
    msg = f"The application answered {reply['type']!r} at shutdown: {message}"
    failed: dict[str, Exception] = {}
    lifespan = getattr(app, "lifespan", None)
    if isinstance(lifespan, ContainerLifespan):
        failed = {
            record.path: record.error
            for record in lifespan.records.values()
            if record.status == "stop failed" and isinstance(record.error, Exception)
        }
    group = ShutdownError(msg, list(failed.values()) or [RuntimeError(message)])
    group.resources = tuple(failed)
    return group


async def _cancelled(task: asyncio.Future[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
