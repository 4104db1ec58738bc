"""Health endpoints to include under any prefix.

``path("health/", include("lifespan_di.urls"))`` serves ``health/live/`` and
``health/ready/``, named ``lifespan_di:live`` and ``lifespan_di:ready``.
"""

from django.urls import path

from lifespan_di.health import views

app_name = "lifespan_di"

urlpatterns = [
    path("live/", views.live, name="live"),
    path("ready/", views.ready, name="ready"),
]
