"""``manage.py runserver``, serving the project's ASGI application with uvicorn.

Django runs the ``runserver`` of the first app in ``INSTALLED_APPS`` that has one;
``django.contrib.staticfiles`` and ``daphne`` have one too, so ``lifespan_di`` must
come before them. This command keeps the static files serving of the staticfiles
one (``--nostatic``, ``--insecure``) and falls back to Django's own WSGI server with
``--nolifespan`` or when uvicorn is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIHandler
from django.core.management.base import CommandParser
from django.core.management.commands.runserver import Command as RunserverCommand
from django.db import connections
from django.utils import autoreload
from django.utils.module_loading import import_string

from lifespan_di.asgi import get_asgi_application

if TYPE_CHECKING:
    from asgiref.typing import ASGIApplication

    from lifespan_di.serve import DevServer

STATICFILES = "django.contrib.staticfiles"
INSTALL_HINT = 'pip install "django-lifespan-di[server]"'


class Command(RunserverCommand):
    help = (
        "Starts a development server that runs your ASGI application with uvicorn, "
        "lifespan included, and serves static files."
    )

    use_lifespan = True
    """Whether this run serves with uvicorn (else with Django's WSGI server)."""
    # Set by Django's handle() from the addrport argument and --ipv6.
    addr: str
    port: str
    use_ipv6: bool

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--nolifespan",
            action="store_false",
            dest="use_lifespan",
            help=(
                "Tells Django to use its own WSGI development server: no lifespan "
                "runs, so no resources start."
            ),
        )
        if apps.is_installed(STATICFILES):
            # The options of django.contrib.staticfiles' runserver, which this one
            # shadows when lifespan_di comes first in INSTALLED_APPS.
            parser.add_argument(
                "--nostatic",
                action="store_false",
                dest="use_static_handler",
                help=(
                    "Tells Django to NOT automatically serve static files at "
                    "STATIC_URL."
                ),
            )
            parser.add_argument(
                "--insecure",
                action="store_true",
                dest="insecure_serving",
                help="Allows serving static files even if DEBUG is False.",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        self.use_lifespan = options["use_lifespan"] and self.uvicorn_installed()
        if self.use_lifespan:
            from lifespan_di.serve import DevServer

            self.server: DevServer = DevServer()
        super().handle(*args, **options)

    def uvicorn_installed(self) -> bool:
        """Return whether uvicorn can serve; if not, warn once that no lifespan runs."""
        if importlib.util.find_spec("uvicorn") is not None:
            return True
        # Under the reloader this runs again in every child process: warn only in
        # the one the developer started.
        if os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true":
            self.stderr.write(
                self.style.WARNING(
                    "uvicorn is not installed, so runserver uses Django's WSGI "
                    "development server: your ASGI lifespan will not run, no "
                    "resources start, and request.state raises. Install it with "
                    f"`{INSTALL_HINT}`, or pass --nolifespan to use Django's server "
                    "without this warning."
                )
            )
        return False

    def run(self, **options: Any) -> None:
        """Run the server, restarting it on code changes unless ``--noreload``.

        With the reloader, the process you started only restarts a child process;
        in the child, the main thread watches the files while uvicorn serves in
        another thread, and stops it, lifespan shutdown included, before the
        process ends for a reload, a signal or Ctrl-C.
        """
        if not (self.use_lifespan and options["use_reloader"]):
            super().run(**options)
            return
        from lifespan_di.serve import restart_with_reloader

        if os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true":
            sys.exit(restart_with_reloader())
        # run_with_reloader() replaces the SIGTERM handler, then sends
        # autoreload_started from the main thread, the only one that may set them.
        autoreload.autoreload_started.connect(self._handle_signals)
        try:
            autoreload.run_with_reloader(self.inner_run, **options)
        finally:
            self.server.stop()

    def _handle_signals(self, sender: object, **kwargs: object) -> None:
        self.server.handle_signals()

    def inner_run(self, *args: Any, **options: Any) -> None:
        """Check the project as Django's runserver does, then serve it with uvicorn."""
        if not self.use_lifespan:
            super().inner_run(*args, **options)
            return
        from lifespan_di.serve import bind

        autoreload.raise_last_exception()
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        for connection in connections.all(initialized_only=True):
            connection.close()

        application = self.get_asgi_handler(**options)
        try:
            sock = bind(self.addr, int(self.port), ipv6=self.use_ipv6)
        except OSError as error:
            self._exit(f"Error: {error.strerror or error}")
        self._announce(sock.getsockname()[1])
        try:
            started = self.server.serve(
                application, sock, use_colors=False if options["no_color"] else None
            )
        except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down
            sys.exit(0)
        if not started:
            self._exit(
                "Error: the application's lifespan startup failed (see above), so "
                "runserver stopped."
            )

    def get_handler(self, *args: Any, **options: Any) -> WSGIHandler:
        """Return Django's WSGI handler, serving static files as staticfiles' does."""
        handler = super().get_handler(*args, **options)
        if self._serves_static(options):
            from django.contrib.staticfiles.handlers import StaticFilesHandler

            return StaticFilesHandler(handler)
        return handler

    def get_asgi_handler(self, **options: Any) -> ASGIApplication:
        """Return the ASGI application to serve, serving static files if asked.

        That is ``settings.ASGI_APPLICATION`` if set, else
        ``lifespan_di.get_asgi_application()``.
        """
        path = getattr(settings, "ASGI_APPLICATION", None)
        if path:
            try:
                application: ASGIApplication = import_string(path)
            except ImportError as error:
                msg = (
                    f"Cannot import ASGI_APPLICATION = {path!r}: {error}. Point it "
                    "to your ASGI application, e.g. 'myproject.asgi.application'."
                )
                raise ImproperlyConfigured(msg) from error
        else:
            application = get_asgi_application()
        if self._serves_static(options):
            from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

            # It hands every scope but http, lifespan included, to the wrapped app.
            # django-stubs types both ends as Django's ASGIHandler, with dict scopes;
            # at run time any ASGI application works.
            return ASGIStaticFilesHandler(application)  # type: ignore[arg-type,return-value]
        return application

    def _serves_static(self, options: dict[str, Any]) -> bool:
        return (
            apps.is_installed(STATICFILES)
            and options.get("use_static_handler", True)
            and (settings.DEBUG or options.get("insecure_serving", False))
        )

    def _announce(self, port: int) -> None:
        """Print Django's runserver banner, naming the server that runs."""
        import uvicorn

        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        if host == "0":
            host = "0.0.0.0"
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        self.stdout.write(
            f"{datetime.now():%B %d, %Y - %X}\n"
            f"Django version {self.get_version()}, using settings "
            f"{settings.SETTINGS_MODULE!r}\n"
            f"Starting ASGI development server (uvicorn {uvicorn.__version__}, "
            f"lifespan on) at {self.protocol}://{host}:{port}/\n"
            f"Quit the server with {quit_command}."
        )
        if os.environ.get("DJANGO_RUNSERVER_HIDE_WARNING") != "true":
            self.stdout.write(
                self.style.WARNING(
                    "WARNING: This is a development server. Do not use it in a "
                    "production setting; run uvicorn (or another ASGI server with "
                    "lifespan on) instead."
                )
            )

    def _exit(self, message: str) -> NoReturn:
        self.stderr.write(message)
        if threading.current_thread() is threading.main_thread():
            sys.exit(1)
        # Under the reloader this runs in a thread, where sys.exit() would end only
        # the thread (Django's runserver does the same for its port errors).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
