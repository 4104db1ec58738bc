"""A container module that asks for the container before it has defined it (E003)."""

from dependency_injector import containers, providers

from lifespan_di import get_container

container = get_container()


class Container(containers.DeclarativeContainer):
    value = providers.Object(1)
