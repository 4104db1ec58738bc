import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")

from lifespan_di import get_asgi_application

application = get_asgi_application()
