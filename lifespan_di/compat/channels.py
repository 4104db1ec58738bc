"""What lifespan_di reads of Django Channels' objects (Channels 4.2 to 4.3).

Channels documents its routers and consumers, not their attributes: the routes of a
``ProtocolTypeRouter`` / ``ChannelNameRouter`` (``application_mapping``) and of a
``URLRouter`` (``routes``, each a Django ``URLPattern`` whose ``callback`` is the
application), the middleware's wrapped application (``inner``; ``application`` for
the origin validators) and the consumer class behind ``Consumer.as_asgi()``
(``consumer_class``). Pinned in tests/test_upstream.py and listed in
docs/how-it-works.md. Nothing here imports Channels: a project without it has no
consumer to find.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

__all__ = [
    "asgi_application",
    "calling_consumer",
    "consumer_applications",
    "routes_lifespan",
]

_WRAPPED = ("inner", "application")
"""Attributes under which ASGI middleware keeps the application it wraps."""
_MAX_DEPTH = 50
"""Bounds the walks: a middleware may wrap itself, a stack may be deep."""


def asgi_application() -> tuple[str, object] | None:
    """The ``ASGI_APPLICATION`` setting (Channels' and daphne's) and what it names.

    None when the setting is unset or its object cannot be imported: Channels'
    own commands report that.
    """
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not isinstance(path, str) or not path:
        return None
    try:
        return path, import_string(path)
    except Exception:
        return None


def routes_lifespan(application: object) -> bool | None:
    """Whether a Channels ``ProtocolTypeRouter`` at ``application`` routes lifespan.

    Looks through middleware wrapping the router. None when ``application`` is no
    such router: nothing to say about it.
    """
    router = _router(application)
    if router is None:
        return None
    return "lifespan" in router.application_mapping


def consumer_applications(application: object) -> Iterator[Any]:
    """Yield the ``as_asgi()`` app of each consumer that ``application`` routes to."""
    seen: set[int] = set()
    pending: list[tuple[object, int]] = [(application, 0)]
    while pending:
        app, depth = pending.pop()
        if app is None or id(app) in seen or depth > _MAX_DEPTH:
            continue
        seen.add(id(app))
        if isinstance(getattr(app, "consumer_class", None), type):
            yield app
            continue
        mapping = getattr(app, "application_mapping", None)
        if isinstance(mapping, dict):
            pending += [(inner, depth + 1) for inner in mapping.values()]
        routes = getattr(app, "routes", None)
        if isinstance(routes, list | tuple):
            pending += [(getattr(r, "callback", None), depth + 1) for r in routes]
        pending += [(getattr(app, name, None), depth + 1) for name in _WRAPPED]


def calling_consumer() -> str | None:
    """Name the Channels consumer whose method called this, if one did.

    For error messages only: it walks the calling frames, looking for a method of a
    consumer (``self``); a sync consumer's handler runs in a worker thread, where its
    own frame is on the stack.
    """
    module = sys.modules.get("channels.consumer")
    if module is None:
        return None
    frame: FrameType | None = sys._getframe(1)
    for _ in range(_MAX_DEPTH):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, module.AsyncConsumer):
            cls = type(owner)
            return f"{cls.__module__}.{cls.__qualname__}"
        frame = frame.f_back
    return None


def _router(application: object) -> Any:
    module = sys.modules.get("channels.routing")
    if module is None:
        return None
    app = application
    for _ in range(_MAX_DEPTH):
        if isinstance(app, module.ProtocolTypeRouter):
            return app
        app = next(
            (getattr(app, n) for n in _WRAPPED if getattr(app, n, None) is not None),
            None,
        )
        if app is None:
            return None
    return None
