"""ASGI entry point: ``uvicorn example_app.asgi:application --lifespan on``.

HTTP requests go to Django through lifespan_di's handler, WebSocket connections to
the consumers of example_app/routing.py (Django Channels), and the server's lifespan
events to the same handler, which starts and stops the container's resources.
Without Channels, ``application = lifespan_di.get_asgi_application()`` is all it
takes (docs/quickstart.md).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_app.settings")

# --8<-- [start:channels]
from lifespan_di import get_asgi_application

django_asgi_app = get_asgi_application()

# Imported once Django is set up, as Channels recommends: consumers may use models.
from channels.routing import URLRouter  # noqa: E402

from example_app.routing import websocket_urlpatterns  # noqa: E402
from example_app.upstream import FollowThisServer  # noqa: E402
from lifespan_di.channels import ProtocolTypeRouter  # noqa: E402

application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": URLRouter(websocket_urlpatterns)}
)
# --8<-- [end:channels]

# The example serves its own upstream: each connection finds it on the server it came
# in to, whatever port that listens on (example_app/upstream.py).
application = FollowThisServer(application)  # type: ignore[assignment]  # the router
