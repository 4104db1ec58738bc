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
# The ORM tests' database; pytest-django creates it in memory, and only for the
# tests marked django_db.
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
}
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
