"""A container instance named by a dotted path (LIFESPAN_DI['CONTAINER'] may be one)."""

from tests.project.containers import Container

container = Container()
