"""Django Channels: the lifespan through Channels' router, resources in consumers.

Two names, for ``asgi.py`` and for consumers (Channels 4.2 to 4.3; extra
``[channels]``; see "Channels" in docs/outside-requests.md):

- ``ProtocolTypeRouter``: Channels' router with a ``"lifespan"`` route, so the server's
  lifespan events reach lifespan_di. Channels' own router has none: uvicorn
  ``--lifespan on`` then exits at startup, and ``--lifespan auto`` serves with
  nothing started.
- ``LifespanConsumerMixin``: ``self.state`` for the connection, and a request scope
  around each message the consumer handles (or around the whole connection), so
  ``inject`` and request resources work in consumers as in views.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from functools import cached_property
from typing import Any, ClassVar, Literal

from channels import routing
from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer

from lifespan_di.asgi import get_asgi_application
from lifespan_di.compat.channels import calling_consumer
from lifespan_di.exceptions import ConfigurationError, LifespanNotRunningError
from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.scope import enter_scope, exit_scope, raise_failures
from lifespan_di.state import State, UnavailableState, scope_state

__all__ = ["LifespanConsumerMixin", "ProtocolTypeRouter"]


class ProtocolTypeRouter(routing.ProtocolTypeRouter):
    """Channels' ``ProtocolTypeRouter``, with the lifespan routed to lifespan_di.

    Import it instead of Channels' own in ``asgi.py``; the mapping stays as it is:

    ```python
    from lifespan_di import get_asgi_application
    from lifespan_di.channels import ProtocolTypeRouter

    django_asgi_app = get_asgi_application()
    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    })
    ```

    The ``"lifespan"`` scope goes to the ``"http"`` application when that is
    lifespan_di's handler, and otherwise to a new one from ``get_asgi_application()``.
    A ``"lifespan"`` route of the mapping is kept as it is.
    """

    def __init__(self, application_mapping: Mapping[str, Any]) -> None:
        mapping = dict(application_mapping)
        if "lifespan" not in mapping:
            http = mapping.get("http")
            if isinstance(http, LifespanASGIHandler):
                mapping["lifespan"] = http
            else:
                mapping["lifespan"] = get_asgi_application()
        super().__init__(mapping)


class LifespanConsumerMixin(AsyncConsumer):
    """Give a Channels consumer ``self.state`` and a request scope per message.

    Put it first among the consumer's bases:

    ```python
    class QuoteConsumer(LifespanConsumerMixin, AsyncWebsocketConsumer):
        @inject
        async def receive(self, text_data=None, bytes_data=None,
                          client=Provide[Container.http_client]): ...
    ```

    Each message the consumer handles (``websocket.connect``, each
    ``websocket.receive``, each channel-layer event) runs in its own request scope:
    the request resources it uses open on first use and close once its handler
    returns, newest first, their teardowns receiving what the handler raised. A
    teardown that fails is logged; when the handler itself succeeded, the
    consumer then raises ``RequestScopeError`` and the server closes the
    connection. Set ``resources_per = "connection"`` to keep them open for the
    whole connection instead, closed when it ends.

    ``self.state`` reads the lifespan state as ``request.state`` does in views.
    """

    resources_per: ClassVar[Literal["message", "connection"]] = "message"
    """How long the request resources a consumer uses stay open."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.resources_per not in ("message", "connection"):
            msg = (
                f"Cannot use resources_per = {cls.resources_per!r} in the consumer "
                f"{cls.__qualname__}: it is 'message' (the default) or 'connection'."
            )
            raise ConfigurationError(msg)
        mro = cls.__mro__
        before = mro[: mro.index(LifespanConsumerMixin)]
        channels_first = [c for c in before if c.__module__.startswith("channels.")]
        if channels_first:
            msg = (
                f"Cannot give the consumer {cls.__qualname__} its request scopes: "
                f"{channels_first[0].__qualname__} comes before LifespanConsumerMixin "
                "in its bases, so Channels dispatches its messages first. Put "
                f"LifespanConsumerMixin first: `class {cls.__name__}("
                f"LifespanConsumerMixin, {channels_first[0].__name__})`."
            )
            raise ConfigurationError(msg)

    @cached_property
    def state(self) -> State:
        """The lifespan state of this connection: ``self.state["http_client"]``.

        A copy per connection, read as ``request.state`` is; what a consumer assigns
        stays in its connection.
        """
        return scope_state(
            getattr(self, "scope", None), ConsumerState, UnavailableConsumerState
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.resources_per == "message":
            await super().__call__(scope, receive, send)
        else:
            await _in_scope("connection", super().__call__(scope, receive, send))

    async def dispatch(self, message: Any) -> None:
        if self.resources_per == "connection":
            await super().dispatch(message)
        else:
            await _in_scope("message", super().dispatch(message))


async def _in_scope(unit: str, handling: Awaitable[None]) -> None:
    """Await ``handling`` in a new request scope, then close what it opened.

    The teardowns receive what ``handling`` raised; a failed close raises only when
    nothing else did.
    """
    request_scope, token = enter_scope(unit)
    raised: BaseException | None = None
    try:
        await handling
    except StopConsumer:
        raise  # how a connection ends well: not the handler's failure
    except BaseException as error:
        raised = error
        raise
    finally:
        exit_scope(token)
        if request_scope.open:
            failed = await request_scope.aclose(raised)
            if raised is None:
                raise_failures(failed)
        else:
            request_scope.end()


class ConsumerState(State):
    """A consumer's ``self.state``: messages name it so."""

    __slots__ = ()
    _label = "self.state"


class UnavailableConsumerState(UnavailableState):
    """A consumer's ``self.state`` while no lifespan runs: every read explains why."""

    __slots__ = ()
    _label = "self.state"

    def _not_running(self, what: str) -> LifespanNotRunningError:
        consumer = calling_consumer() or "reading it"
        return LifespanNotRunningError.accessing(what, consumer)
