"""A URLconf routing the DRF views of ``tests.project.styles``."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from tests.project import styles

router = DefaultRouter()
router.register("clients", styles.ClientViewSet, basename="client")

urlpatterns = [
    *router.urls,
    path("api-view-outside/", styles.api_view_outside),
    path("api-view-inside/", styles.api_view_inside),
]
