"""Liveness and readiness endpoints, with per-resource health checks.

``views`` holds the endpoints (``lifespan_di.urls`` routes them), ``checks`` runs the
checks, ``declared`` reads them from the container's ``HEALTH_CHECKS``.
"""

from lifespan_di.health.views import live, ready

__all__ = ["live", "ready"]
