"""Settings of the project the tests (and the end-to-end servers) run."""

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "lifespan_di",
]
MIDDLEWARE = ["lifespan_di.middleware.LifespanStateMiddleware"]
ROOT_URLCONF = "tests.project.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
LIFESPAN_DI = {
    "CONTAINER": "tests.project.containers.Container",
    "STARTUP_TIMEOUT": 10.0,
    "SHUTDOWN_TIMEOUT": 10.0,
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"lifespan_di": {"handlers": ["stderr"], "level": "INFO"}},
}
