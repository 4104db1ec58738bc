"""Settings of the example project: no database, one container, lifespan on."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "example-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = ["lifespan_di"]
MIDDLEWARE = ["lifespan_di.middleware.LifespanStateMiddleware"]
ROOT_URLCONF = "example_app.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

LIFESPAN_DI = {
    "CONTAINER": "example_app.containers.Container",
    "STARTUP_TIMEOUT": 10.0,
    "SHUTDOWN_TIMEOUT": 10.0,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"lifespan_di": {"handlers": ["console"], "level": "INFO"}},
}
