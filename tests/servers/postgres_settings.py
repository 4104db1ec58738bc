"""Settings of the matrix project on a real PostgreSQL server, for REQUEST_THREADS.

From the environment: the server (``LIFESPAN_DI_TEST_PG_HOST``, ``_PORT``, ``_NAME``,
``_USER``), ``LIFESPAN_DI_TEST_CONN_MAX_AGE`` and ``LIFESPAN_DI_TEST_REQUEST_THREADS``
(empty: unset).
"""

import os

from tests.servers.settings import *  # noqa: F403
from tests.servers.settings import LIFESPAN_DI

ROOT_URLCONF = "tests.servers.postgres_urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ["LIFESPAN_DI_TEST_PG_HOST"],
        "PORT": os.environ["LIFESPAN_DI_TEST_PG_PORT"],
        "NAME": os.environ["LIFESPAN_DI_TEST_PG_NAME"],
        "USER": os.environ["LIFESPAN_DI_TEST_PG_USER"],
        "CONN_MAX_AGE": int(os.environ.get("LIFESPAN_DI_TEST_CONN_MAX_AGE", "0")),
    }
}
_threads = os.environ.get("LIFESPAN_DI_TEST_REQUEST_THREADS")
LIFESPAN_DI = {**LIFESPAN_DI, "REQUEST_THREADS": int(_threads) if _threads else None}
