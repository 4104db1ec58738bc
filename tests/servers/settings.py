"""Settings of the project the server matrix serves: tests.project's, own container.

Timeouts come from the environment so that one project covers every fault:
``LIFESPAN_DI_TEST_STARTUP_TIMEOUT`` and ``LIFESPAN_DI_TEST_SHUTDOWN_TIMEOUT``; so
does the container's class name, ``LIFESPAN_DI_TEST_CONTAINER`` (default
``Container``).
"""

import os

from tests.project.settings import *  # noqa: F403
from tests.project.settings import LOGGING

ROOT_URLCONF = "tests.servers.urls"
LIFESPAN_DI = {
    "CONTAINER": "tests.servers.containers."
    + os.environ.get("LIFESPAN_DI_TEST_CONTAINER", "Container"),
    "STARTUP_TIMEOUT": float(os.environ.get("LIFESPAN_DI_TEST_STARTUP_TIMEOUT", "20")),
    "SHUTDOWN_TIMEOUT": float(os.environ.get("LIFESPAN_DI_TEST_SHUTDOWN_TIMEOUT", "5")),
}
# With DEBUG off, Django logs a view's exception only to mail_admins: send it to
# stderr, where the tests read the error a server without lifespan produces.
LOGGING = {
    **LOGGING,
    "loggers": {
        **LOGGING["loggers"],
        "django.request": {"handlers": ["stderr"], "level": "ERROR"},
    },
}
