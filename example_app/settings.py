"""Settings of the example project: one container, lifespan on, SQLite on disk."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "example-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
# --8<-- [start:settings]
INSTALLED_APPS = ["lifespan_di", "example_app"]
MIDDLEWARE = ["lifespan_di.middleware.LifespanStateMiddleware"]
LIFESPAN_DI = {
    "CONTAINER": "example_app.containers.Container",
    "STARTUP_TIMEOUT": 10.0,
    "SHUTDOWN_TIMEOUT": 10.0,
    "REQUEST_THREADS": 8,  # long-lived request threads: docs/configuration.md
}
# --8<-- [end:settings]
ROOT_URLCONF = "example_app.urls"
# Channels' setting, naming the router: `manage.py check` validates its consumers.
ASGI_APPLICATION = "example_app.asgi.application"
# The example's data lives in its own SQLite file, through the `database` resource:
# Django's ORM is not used.
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

# Where the example keeps its favourites, and where its HTTP client finds the
# upstream service: unset, under /upstream/ of the server a request came in to
# (example_app/upstream.py); commands and workers need it if that is not port 8000.
EXAMPLE_DATABASE = os.environ.get("EXAMPLE_DATABASE", str(BASE_DIR / "example.sqlite3"))
EXAMPLE_UPSTREAM_URL = os.environ.get("EXAMPLE_UPSTREAM_URL")

# example_app/celery.py: `celery --app=example_app worker`.
CELERY_BROKER_URL = os.environ.get("EXAMPLE_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = CELERY_BROKER_URL

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "lifespan_di": {"handlers": ["console"], "level": "INFO"},
        "example_app": {"handlers": ["console"], "level": "INFO"},
    },
}
