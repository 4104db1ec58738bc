"""The parts of Django that lifespan_di uses without a documented API.

Each is pinned by a test in ``tests/test_upstream.py`` on every supported Django
series and listed, with the handler methods lifespan_di overrides and the test-client
internals it builds on, in docs/how-it-works.md ("What lifespan_di relies on").
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpResponseBase

__all__ = ["close_with_response", "mark_logged"]


def close_with_response(response: HttpResponseBase, closer: Callable[[], None]) -> None:
    """Call ``closer`` when Django closes ``response``, before ``request_finished``.

    ``HttpResponseBase.close()`` calls its ``_resource_closers`` first, then sends
    ``request_finished`` (which closes the database connections); an exception a
    closer raises is swallowed there, so ``closer`` reports its own failures.
    """
    response._resource_closers.append(closer)  # type: ignore[attr-defined]


def mark_logged(response: HttpResponseBase) -> None:
    """Keep ``django.request`` from logging ``response`` (Django's ``log_response``)."""
    response._has_been_logged = True  # type: ignore[attr-defined]
