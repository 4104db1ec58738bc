"""A URLconf that includes the health endpoints under a prefix."""

from django.urls import include, path

urlpatterns = [path("ops/health/", include("lifespan_di.urls"))]
