"""Views in the styles of DRF and django-ninja, each receiving injected resources.

Every view answers with the ``id()`` of what it received, so a test can compare it
with the resource its lifespan started.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from ninja import NinjaAPI
from rest_framework import viewsets
from rest_framework.decorators import action, api_view
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from lifespan_di import Provide, inject
from tests.project.containers import Container, Counter


class ClientViewSet(viewsets.ViewSet):
    authentication_classes: tuple[Any, ...] = ()
    permission_classes: tuple[Any, ...] = ()
    renderer_classes = (JSONRenderer,)

    @inject
    def list(
        self,
        request: Request,
        client: httpx.AsyncClient = Provide[Container.httpx_client],
    ) -> Response:
        return Response({"id": id(client)})

    @inject
    def retrieve(
        self,
        request: Request,
        pk: str,
        counter: Annotated[Counter, Provide[Container.counter]],
    ) -> Response:
        return Response({"id": id(counter), "pk": pk})

    @action(detail=False)
    @inject
    def inject_inside(
        self, request: Request, counter: Counter = Provide[Container.counter]
    ) -> Response:
        return Response({"id": id(counter)})

    @inject
    @action(detail=False)
    def inject_outside(
        self, request: Request, counter: Counter = Provide[Container.counter]
    ) -> Response:
        return Response({"id": id(counter)})


# --8<-- [start:drf]
@api_view(["GET"])
@inject
def api_view_outside(
    request: Request, counter: Counter = Provide[Container.counter]
) -> Response:
    return Response({"id": id(counter)})


# --8<-- [end:drf]


@inject
@api_view(["GET"])
def api_view_inside(
    request: Request, counter: Counter = Provide[Container.counter]
) -> Response:
    return Response({"id": id(counter)})


api = NinjaAPI(urls_namespace="lifespan_di_styles")


@api.get("/sync")
@inject
def ninja_sync(
    request: Any, name: str, counter: Counter = Provide[Container.counter]
) -> dict[str, Any]:
    return {"id": id(counter), "name": name}


# --8<-- [start:ninja]
@api.get("/async")
@inject
async def ninja_async(
    request: Any,
    name: str,
    client: Annotated[httpx.AsyncClient, Provide[Container.httpx_client]],
) -> dict[str, Any]:
    return {"id": id(client), "name": name}


# --8<-- [end:ninja]
