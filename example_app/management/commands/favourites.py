"""``python -m django favourites --settings example_app.settings``: the saved quotes."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand

from example_app.containers import Container
from example_app.database import Favourites
from example_app.upstream import Quote
from lifespan_di import Provide, inject, lifespan, request_scope


# --8<-- [start:outside]
@inject
async def saved_quotes(
    favourites: Favourites = Provide[Container.favourites],
) -> list[Quote]:
    """Any function can be injected, not only views."""
    return await favourites.all()


class Command(BaseCommand):
    help = "List the saved quotes, using the same resources as the server."

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self.print_saved_quotes())

    async def print_saved_quotes(self) -> None:
        # lifespan(): the resources, started and stopped as the server does.
        # request_scope(): one unit of work, as a request would have.
        async with lifespan(), request_scope():
            for quote in await saved_quotes():
                self.stdout.write(f"{quote['number']}. {quote['text']}")


# --8<-- [end:outside]
