"""``python -m django save_quotes 1 3 --settings example_app.settings``: save quotes."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from example_app.containers import Container
from example_app.database import Favourites
from example_app.upstream import QuotesApi
from lifespan_di import Provide, inject, request_scope
from lifespan_di.management import LifespanCommand


# --8<-- [start:async_command]
class Command(LifespanCommand):
    help = "Fetch quotes from the upstream and save them, all or none."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("numbers", nargs="+", type=int)

    async def ahandle(self, *args: Any, **options: Any) -> None:
        # The resources run; request_scope(): one transaction, as a request has.
        async with request_scope():
            for number in options["numbers"]:
                await self.save(number)
        self.stdout.write(f"Saved {len(options['numbers'])} quotes.")

    @inject
    async def save(
        self,
        number: int,
        quotes: QuotesApi = Provide[Container.quotes],
        favourites: Favourites = Provide[Container.favourites],
    ) -> None:
        quote = await quotes.get(number)
        if quote is None:
            msg = f"The upstream has no quote {number}: nothing was saved."
            raise CommandError(msg)
        await favourites.add(quote)


# --8<-- [end:async_command]
