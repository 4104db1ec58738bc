"""Container-driven ASGI lifespan for Django, on top of dependency-injector."""

from lifespan_di.asgi import get_asgi_application
from lifespan_di.conf import get_container
from lifespan_di.core.lifespan import (
    ContainerLifespan,
    container_lifespan,
    running_lifespan,
)
from lifespan_di.handler import LifespanASGIHandler
from lifespan_di.injection import Provide, Provider, inject
from lifespan_di.providers import RequestResource
from lifespan_di.standalone import lifespan, request_scope, run, with_lifespan
from lifespan_di.state import State
from lifespan_di.view_resources import ViewResource

__all__ = [
    "ContainerLifespan",
    "LifespanASGIHandler",
    "Provide",
    "Provider",
    "RequestResource",
    "State",
    "ViewResource",
    "container_lifespan",
    "get_asgi_application",
    "get_container",
    "inject",
    "lifespan",
    "request_scope",
    "run",
    "running_lifespan",
    "with_lifespan",
]
