"""Settings of the Channels project (tests/servers/channels_asgi.py): own container."""

from tests.servers.settings import *  # noqa: F403
from tests.servers.settings import LIFESPAN_DI

LIFESPAN_DI = {**LIFESPAN_DI, "CONTAINER": "tests.servers.consumers.ChannelsContainer"}
ASGI_APPLICATION = "tests.servers.channels_asgi.application"
