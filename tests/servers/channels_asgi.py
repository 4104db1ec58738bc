"""The Channels application the real-server WebSocket tests serve.

lifespan_di's ``ProtocolTypeRouter``: HTTP goes to the matrix project's views (so
``/ready/`` answers), the lifespan to the same handler, WebSockets to
tests/servers/consumers.py.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.servers.channels_settings")

from channels.routing import URLRouter
from django.urls import path

from lifespan_di import get_asgi_application
from lifespan_di.channels import ProtocolTypeRouter
from tests.servers import consumers

application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": URLRouter(
            [
                path("ws/async/", consumers.AsyncUnitConsumer.as_asgi()),
                path("ws/sync/", consumers.SyncSessionConsumer.as_asgi()),
                path("ws/raise/", consumers.RaisingConsumer.as_asgi()),
                path("ws/connection/", consumers.ConnectionConsumer.as_asgi()),
                path("ws/state/", consumers.StateConsumer.as_asgi()),
            ]
        ),
    }
)
