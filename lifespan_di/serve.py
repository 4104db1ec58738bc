"""Run uvicorn, lifespan on, for ``manage.py runserver`` under Django's autoreloader.

Django's reloader runs the server in a thread of a child process, and ends that
process from the main thread: ``sys.exit(3)`` on a code change, ``sys.exit(0)`` on
SIGTERM, ``KeyboardInterrupt`` on Ctrl-C. The server thread dies with it, so no
lifespan shutdown would run, and uvicorn handles signals only in the main thread.
``DevServer`` lets the main thread stop the server and wait for its lifespan
shutdown; ``restart_with_reloader`` is the parent process, which passes signals on
to the child instead of killing it.

Imports uvicorn: import this module only when uvicorn is installed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeAlias

import uvicorn
from asgiref.typing import ASGIApplication
from django.utils import autoreload

__all__ = ["DevServer", "bind", "restart_with_reloader"]

SignalHandler: TypeAlias = Callable[[int, FrameType | None], Any] | int | None
# The exit code with which the child asks to be restarted (django.utils.autoreload).
RELOAD_EXIT_CODE = 3


def bind(host: str, port: int, *, ipv6: bool) -> socket.socket:
    """Return a listening socket on ``host:port`` (port 0: any free port).

    It listens before the lifespan starts, so requests made while resources start
    wait instead of being refused.
    """
    sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Django's
        sock.bind((host, port))
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


class DevServer:
    """One uvicorn server with lifespan on, which the main thread can stop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._stopping = False  # guarded by _lock
        self._stopped = threading.Event()
        self._signalled = False  # read and written by the main thread only
        self._interrupted = False

    def serve(
        self,
        application: ASGIApplication,
        sock: socket.socket,
        *,
        use_colors: bool | None = None,
    ) -> bool:
        """Serve ``application`` on ``sock`` until stopped, then close ``sock``.

        Returns:
            ``False`` if the lifespan startup failed (nothing is served then),
            ``True`` once the server has shut down.
        """
        config = uvicorn.Config(
            application, lifespan="on", log_level="info", use_colors=use_colors
        )
        server = uvicorn.Server(config)
        with self._lock:
            if self._stopping:
                sock.close()
                return True
            self._server = server
        try:
            server.run(sockets=[sock])
        except SystemExit:
            # uvicorn calls sys.exit(3) when the application reports
            # lifespan.startup.failed; in a thread that would end only the thread.
            if server.started:
                raise
            return False
        finally:
            sock.close()
            self._stopped.set()
        return True

    def stop(self) -> None:
        """Make the server shut down, lifespan included, and wait until it has.

        Call it from the main thread. Signals no longer interrupt it, except that a
        second Ctrl-C stops waiting for open connections, as in uvicorn (whose
        lifespan task is then cancelled instead of shut down).
        """
        self._signalled = True
        previous = self.handle_signals()
        try:
            with self._lock:
                self._stopping = True
                server = self._server
            if server is not None:
                server.should_exit = True
                self._stopped.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def handle_signals(self) -> dict[int, SignalHandler]:
        """Handle SIGINT and SIGTERM in the main thread, until the server has stopped.

        The first one raises ``KeyboardInterrupt``, which ends Django's reloader loop
        so that the caller can ``stop()``; later ones never raise (raising would
        leave ``stop()`` before the lifespan has shut down), but a second SIGINT
        forces the exit.

        Returns:
            The handlers replaced.
        """
        previous: dict[int, SignalHandler] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if handler is not signal.SIG_IGN:  # SIGINT is, in a script's background job
                previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            if self._interrupted and self._server is not None:
                self._server.force_exit = True
            self._interrupted = True
        if not self._signalled:
            self._signalled = True
            raise KeyboardInterrupt


def restart_with_reloader() -> int:
    """Run the command in a child process, again each time it exits to reload.

    This is Django's ``autoreload.restart_with_reloader`` with one difference: the
    child is never killed. Django's parent turns SIGTERM and Ctrl-C into an
    exception that makes ``subprocess.run`` SIGKILL the child (after 0.25 s for
    Ctrl-C), which cuts its lifespan shutdown short. Here SIGTERM and SIGINT are
    passed to the child as SIGTERM (the terminal sends Ctrl-C to the child too, and
    a SIGINT twice would force the exit), and the parent waits for it.

    Returns:
        The child's exit code.
    """
    env = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true"}
    child: subprocess.Popen[bytes] | None = None
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None:
            child.send_signal(signal.SIGTERM)

    previous = {
        signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:  # SIGINT is, in a script's background job
            signal.signal(signum, forward)
    try:
        while True:
            child = subprocess.Popen(
                autoreload.get_child_arguments(), env=env, close_fds=False
            )
            returncode = child.wait()
            if returncode != RELOAD_EXIT_CODE or stopping:
                return returncode
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
