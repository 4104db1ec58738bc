"""Health endpoints to include under any prefix.

``path("health/", include("lifespan_di.urls"))`` serves ``health/live/`` and
``health/ready/``, named ``lifespan_di:live`` and ``lifespan_di:ready``.
"""

from django.urls import path

from lifespan_di import health

app_name = "lifespan_di"

urlpatterns = [
    path("live/", health.live, name="live"),
    path("ready/", health.ready, name="ready"),
]
