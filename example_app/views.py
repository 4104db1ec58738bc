"""The example's views: one of each style lifespan_di serves resources to."""

from __future__ import annotations

from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.views import View

from example_app.containers import Container
from example_app.database import Favourites
from example_app.metrics import Metrics
from example_app.upstream import QuotesApi
from lifespan_di import Provide, inject, running_lifespan

PAGES = {
    "/quotes/1/": "an async view: a quote fetched through the app-wide httpx client",
    "/favourites/": "a class-based view: saved quotes, one transaction per request "
    "(POST number=1&number=2 to save)",
    "/stats/": "a sync view: the counters of the sync metrics resource",
    "/status/": "a view without inject: the resources read from request.state",
    "/lifespan/": "each resource's status and startup time, from the lifespan",
    "/health/ready/": "readiness: the lifespan runs and the database answers",
    "/upstream/quotes/1/": "the upstream service the httpx client calls",
    "/ws/quotes/": "a WebSocket (Django Channels): send a quote number, get the quote",
}


def index(request: HttpRequest) -> JsonResponse:
    """The pages of the example."""
    return JsonResponse({"pages": PAGES})


# --8<-- [start:async_view]
@inject
async def quote(
    request: HttpRequest,
    number: int,
    quotes: QuotesApi = Provide[Container.quotes],
    metrics: Metrics = Provide[Container.metrics],
) -> JsonResponse:
    """An async function view: the upstream's quote, through the app-wide client."""
    metrics.increment("quote views")
    found = await quotes.get(number)
    if found is None:
        return JsonResponse(
            {"error": f"The upstream has no quote {number}."}, status=404
        )
    return JsonResponse(found)


# --8<-- [end:async_view]


# --8<-- [start:sync_view]
@inject
def stats(
    request: HttpRequest, metrics: Metrics = Provide[Container.metrics]
) -> JsonResponse:
    """A sync function view: Django runs it in a thread; it gets the same object."""
    return JsonResponse(metrics.snapshot())


# --8<-- [end:sync_view]


# --8<-- [start:class_view]
class FavouritesView(View):
    """A class-based view: each request reads and writes in its own transaction."""

    @inject
    async def get(
        self,
        request: HttpRequest,
        favourites: Favourites = Provide[Container.favourites],
    ) -> JsonResponse:
        return JsonResponse({"favourites": await favourites.all()})

    @inject
    async def post(
        self,
        request: HttpRequest,
        quotes: QuotesApi = Provide[Container.quotes],
        favourites: Favourites = Provide[Container.favourites],
    ) -> HttpResponse:
        """Save every quote named by a ``number`` field, or none of them."""
        numbers = request.POST.getlist("number")
        if not numbers or not all(number.isdigit() for number in numbers):
            return HttpResponseBadRequest("Send one or more number=<int> fields.")
        for number in map(int, numbers):
            found = await quotes.get(number)
            if found is None:
                # Raising rolls back the quotes this request already added.
                msg = f"The upstream has no quote {number}."
                raise Http404(msg)
            await favourites.add(found)
        return JsonResponse({"saved": list(map(int, numbers))}, status=201)


# --8<-- [end:class_view]


# --8<-- [start:state_view]
def status(request: HttpRequest) -> JsonResponse:
    """A sync view without inject: the same resources, read from request.state."""
    state = request.state  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "resources": sorted(state),  # the app-scoped ones, by provider name
            "http_client_open": not state.http_client.is_closed,
            "counted": state["metrics"].snapshot(),
        }
    )


# --8<-- [end:state_view]


# --8<-- [start:lifespan_view]
def lifespan_report(request: HttpRequest) -> JsonResponse:
    """What the running lifespan recorded about each resource."""
    lifespan = running_lifespan()
    if lifespan is None:
        return JsonResponse({"lifespan": "not running"}, status=503)
    return JsonResponse(
        {
            "lifespan": "running" if lifespan.running else "stopping",
            "resources": {
                record.path: {
                    "status": record.status,
                    "started_in_ms": round((record.start_seconds or 0.0) * 1000, 1),
                    "depends_on": list(record.dependencies),
                }
                for record in lifespan.records.values()
            },
        }
    )


# --8<-- [end:lifespan_view]
