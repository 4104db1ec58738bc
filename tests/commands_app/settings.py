"""The test project's settings, plus an app with commands that tests run as processes."""

from tests.project.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.commands_app"]  # noqa: F405
ROOT_URLCONF = "tests.project.empty_urls"
