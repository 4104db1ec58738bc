"""The ASGI application every server in the matrix serves."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.servers.settings")

from lifespan_di import get_asgi_application

application = get_asgi_application()
