"""The example's WebSocket routes, for ``URLRouter`` in example_app/asgi.py."""

from typing import Any

from django.urls import path

from example_app import consumers

# list[Any]: django-stubs types path()'s view as a Django view, not an ASGI app.
websocket_urlpatterns: list[Any] = [
    path("ws/quotes/", consumers.QuoteConsumer.as_asgi()),  # type: ignore[arg-type]
]
