"""Settings of the Celery workers the tests start: the server matrix's, own container."""

from tests.servers.settings import *  # noqa: F403
from tests.servers.settings import LIFESPAN_DI

LIFESPAN_DI = {**LIFESPAN_DI, "CONTAINER": "tests.workers.containers.WorkerContainer"}
