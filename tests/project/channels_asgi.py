"""Channels routers over the test project's consumers, for ``ASGI_APPLICATION``."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter as ChannelsRouter
from channels.routing import URLRouter
from django.urls import path

from lifespan_di import get_asgi_application
from lifespan_di.channels import ProtocolTypeRouter
from tests.project import consumers

django_asgi_app = get_asgi_application()

websocket = URLRouter(
    [
        path("async/", consumers.AsyncSessionConsumer.as_asgi()),
        path("sync/", consumers.SyncSessionConsumer.as_asgi()),
        path("connection/", consumers.ConnectionConsumer.as_asgi()),
        path("state/", consumers.StateConsumer.as_asgi()),
        path("plain/", consumers.PlainConsumer.as_asgi()),
        path("plain-sync/", consumers.PlainSyncConsumer.as_asgi()),
    ]
)

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket})
"""lifespan_di's router: the lifespan goes to ``django_asgi_app``."""

without_lifespan = ChannelsRouter({"http": django_asgi_app, "websocket": websocket})
"""Channels' own router: no lifespan route."""

with_lifespan_route = ChannelsRouter(
    {"http": django_asgi_app, "websocket": websocket, "lifespan": django_asgi_app}
)
"""Channels' own router, the lifespan mapped by hand."""

unknown_marker = ProtocolTypeRouter(
    {
        "websocket": AuthMiddlewareStack(
            URLRouter(
                [
                    path(
                        "nested/",
                        URLRouter(
                            [path("bad/", consumers.UnknownMarkerConsumer.as_asgi())]
                        ),
                    )
                ]
            )
        )
    }
)
"""A consumer with a marker naming no provider, behind middleware and two routers."""
