"""Test clients that go through the real ASGI application, and ``override``.

Django's test clients never call the project's ASGI application, so no lifespan runs
and requests carry no ``state`` (see "What lifespan_di relies on" in
docs/how-it-works.md). ``LifespanClient`` and
``LifespanAsyncClient`` keep Django's client API but run the application's lifespan
around a block and send every request through the application, as a server does.
"""

from lifespan_di.testing.clients import LifespanAsyncClient, LifespanClient
from lifespan_di.testing.compat import LifespanAwareAsyncClient
from lifespan_di.testing.overrides import Override, override

__all__ = [
    "LifespanAsyncClient",
    "LifespanAwareAsyncClient",
    "LifespanClient",
    "Override",
    "override",
]
