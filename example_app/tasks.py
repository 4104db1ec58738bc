"""The example's Celery task: the ``save_quotes`` command, run by a worker."""

from __future__ import annotations

from celery import shared_task

import lifespan_di
from example_app.containers import Container
from example_app.database import Favourites
from example_app.upstream import QuotesApi
from lifespan_di import Provide, inject


# --8<-- [start:task]
@shared_task
def save_quotes(numbers: list[int]) -> int:
    """Fetch quotes from the upstream and save them, all or none."""
    # A sync task: the coroutine runs on the loop the worker's resources run on,
    # in the task's request scope (one unit of work, closed after the task).
    return lifespan_di.run(fetch_and_save(numbers))


@inject
async def fetch_and_save(
    numbers: list[int],
    quotes: QuotesApi = Provide[Container.quotes],
    favourites: Favourites = Provide[Container.favourites],
) -> int:
    for number in numbers:
        quote = await quotes.get(number)
        if quote is None:
            # The unit of work sees this exception and rolls back.
            msg = f"The upstream has no quote {number}: nothing was saved."
            raise LookupError(msg)
        await favourites.add(quote)
    return len(numbers)


# --8<-- [end:task]
