"""Settings of the same project without lifespan_di: the load test's baseline."""

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.project.bare_urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
