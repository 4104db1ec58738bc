"""``LifespanAwareAsyncClient``: django-asgi-lifespan's test client, same signature."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.test import AsyncClient

from lifespan_di.core.lifespan import LIFESPAN_STATE_KEY

__all__ = ["LifespanAwareAsyncClient"]


class LifespanAwareAsyncClient(AsyncClient):
    """Django's ``AsyncClient`` whose requests carry the ``state`` you give it.

    A drop-in for ``django_asgi_lifespan.testing.LifespanAwareAsyncClient``: no
    lifespan runs, and views see ``state`` in ``request.state``. Unlike the original,
    each request gets its own shallow copy, so a view's writes never leak into the
    next request. To run the real resources instead, use ``LifespanAsyncClient``.
    """

    def __init__(self, state: Mapping[str, Any], **defaults: Any) -> None:
        super().__init__(**defaults)
        # Kept apart from ``defaults``: Django 5.2+ turns extra client arguments
        # into headers (docs/how-it-works.md, "What lifespan_di relies on").
        self.state = state

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        scope: dict[str, Any] = super()._base_scope(**request)  # type: ignore[misc]  # private, not in django-stubs
        # The marker tells LifespanStateMiddleware that this state is the one to use.
        scope["state"] = {**self.state, LIFESPAN_STATE_KEY: None}
        return scope
