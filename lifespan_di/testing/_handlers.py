"""Django's test-client handlers, replaced by ones that go through the application.

``_AsyncHandler`` and ``_SyncHandler`` take the place of the handlers Django's
``AsyncClient`` and ``Client`` call: they turn what those clients build (an ASGI
scope, or a WSGI environ) into an ASGI scope and body for ``_Application``, which
answers with a Django test response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.test.client import AsyncClientHandler, ClientHandler

from lifespan_di.testing._asgi import _Application


class _AsyncHandler(AsyncClientHandler):
    """Takes the place of Django's handler: the scope goes to the application."""

    def __init__(self, app: _Application, enforce_csrf_checks: bool) -> None:
        super().__init__(enforce_csrf_checks)
        self.app = app

    async def __call__(self, scope: dict[str, Any]) -> Any:
        body_file = scope.pop("_body_file", None)
        body = body_file.read() if body_file is not None else b""
        scope["path"] = _asgi_path(scope["path"])
        return await self.app.arun(
            self.app.serve(scope, body, self.enforce_csrf_checks)
        )


class _SyncHandler(ClientHandler):
    """Takes the place of Django's handler: the environ becomes an ASGI scope."""

    def __init__(self, app: _Application, enforce_csrf_checks: bool) -> None:
        super().__init__(enforce_csrf_checks)
        self.app = app

    def __call__(self, environ: dict[str, Any]) -> Any:
        scope, body = _scope_from_environ(environ)
        response = self.app.run(self.app.serve(scope, body, self.enforce_csrf_checks))
        response.wsgi_request = response.asgi_request  # type: ignore[attr-defined]
        return response


def _scope_from_environ(environ: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Translate the WSGI environ Django's ``Client`` builds into an ASGI scope."""
    headers = []
    for key, value in environ.items():
        is_header = key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")
        if is_header and value != "":
            name = key.removeprefix("HTTP_").lower().replace("_", "-")
            headers.append((name.encode("latin1"), _wsgi_bytes(str(value))))
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    script_name = environ.get("SCRIPT_NAME", "")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": environ.get("SERVER_PROTOCOL", "HTTP/1.1").removeprefix(
            "HTTP/"
        ),
        "method": environ["REQUEST_METHOD"].upper(),
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "path": _asgi_path(script_name + environ["PATH_INFO"]),
        "query_string": _wsgi_bytes(environ.get("QUERY_STRING", "")),
        "root_path": script_name,
        "headers": headers,
        "client": (environ.get("REMOTE_ADDR", "127.0.0.1"), 0),
        "server": (
            environ.get("SERVER_NAME", "testserver"),
            int(environ.get("SERVER_PORT", 80)),
        ),
    }
    return scope, body


def _wsgi_bytes(value: str) -> bytes:
    try:
        return value.encode("latin1")  # PEP 3333: environ strings are bytes as latin-1
    except UnicodeEncodeError:
        return value.encode()


def _asgi_path(path: str) -> str:
    """Decode a test client's latin-1 path as UTF-8, as servers decode paths."""
    try:
        return path.encode("latin1").decode()
    except UnicodeError:
        return path
