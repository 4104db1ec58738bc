"""A container class named like the one in tests.test_inject, in another module."""

from dependency_injector import containers, providers


class Services(containers.DeclarativeContainer):
    client = providers.Object("the twin's client")
