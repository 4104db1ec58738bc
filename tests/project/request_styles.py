"""Every view style receiving an app resource and a request resource, served by URL.

Each view answers ``{"app": id(app resource), "session": session id}`` so that a test
can check both against the lifespan's state and the request resource's events.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView
from ninja import NinjaAPI
from rest_framework import viewsets
from rest_framework.decorators import api_view
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lifespan_di import Provide, inject
from tests.project.containers import Container, Counter, Session

SyncSession = Annotated[Session, Provide[Container.session]]
AsyncSession = Annotated[Session, Provide[Container.async_session]]
AppCounter = Annotated[Counter, Provide[Container.counter]]
AppClient = Annotated[httpx.AsyncClient, Provide[Container.httpx_client]]


def answer(app: object, session: Session) -> dict[str, Any]:
    return {"app": id(app), "session": session.id}


class SyncGet(View):
    @inject
    def get(
        self, request: HttpRequest, counter: AppCounter, session: SyncSession
    ) -> JsonResponse:
        return JsonResponse(answer(counter, session))


class AsyncGet(View):
    @inject
    async def get(
        self, request: HttpRequest, client: AppClient, session: AsyncSession
    ) -> JsonResponse:
        return JsonResponse(answer(client, session))


class SyncDispatch(View):
    @inject
    def dispatch(
        self,
        request: HttpRequest,
        *args: Any,
        counter: AppCounter,
        session: SyncSession,
        **kwargs: Any,
    ) -> HttpResponse:
        self.answer = answer(counter, session)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(self.answer)


class AsyncDispatch(View):
    @inject
    async def dispatch(
        self,
        request: HttpRequest,
        *args: Any,
        client: AppClient,
        session: AsyncSession,
        **kwargs: Any,
    ) -> HttpResponse:
        self.answer = answer(client, session)
        response: HttpResponse = await super().dispatch(request, *args, **kwargs)
        return response

    async def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(self.answer)


class ContextData(TemplateView):
    @inject
    def get_context_data(
        self, counter: AppCounter, session: SyncSession, **kwargs: Any
    ) -> dict[str, Any]:
        return answer(counter, session)

    def render_to_response(
        self, context: dict[str, Any], **response_kwargs: Any
    ) -> HttpResponse:
        return JsonResponse(context)


class Sessions(viewsets.ViewSet):
    authentication_classes: tuple[Any, ...] = ()
    permission_classes: tuple[Any, ...] = ()
    renderer_classes = (JSONRenderer,)

    @inject
    def list(
        self, request: Request, counter: AppCounter, session: SyncSession
    ) -> Response:
        return Response(answer(counter, session))


class SessionAPIView(APIView):
    authentication_classes: tuple[Any, ...] = ()
    permission_classes: tuple[Any, ...] = ()
    renderer_classes = (JSONRenderer,)

    @inject
    def get(
        self, request: Request, counter: AppCounter, session: SyncSession
    ) -> Response:
        return Response(answer(counter, session))


@api_view(["GET"])
@inject
def api_view_outside(
    request: Request, counter: AppCounter, session: SyncSession
) -> Response:
    return Response(answer(counter, session))


@inject
@api_view(["GET"])
def api_view_inside(
    request: Request, counter: AppCounter, session: SyncSession
) -> Response:
    return Response(answer(counter, session))


api = NinjaAPI(urls_namespace="lifespan_di_request_styles")


@api.get("/sync")
@inject
def ninja_sync(request: Any, counter: AppCounter, session: SyncSession) -> Any:
    return answer(counter, session)


@api.get("/async")
@inject
async def ninja_async(request: Any, client: AppClient, session: AsyncSession) -> Any:
    return answer(client, session)


@csrf_exempt
@require_POST
@inject
def decorated_inside(
    request: HttpRequest, counter: AppCounter, session: SyncSession
) -> JsonResponse:
    return JsonResponse(answer(counter, session))


@inject
@csrf_exempt
@require_POST
def decorated_outside(
    request: HttpRequest, counter: AppCounter, session: SyncSession
) -> JsonResponse:
    return JsonResponse(answer(counter, session))


@csrf_exempt
@require_POST
@inject
async def async_decorated_inside(
    request: HttpRequest, client: AppClient, session: AsyncSession
) -> JsonResponse:
    return JsonResponse(answer(client, session))


@inject
@csrf_exempt
@require_POST
async def async_decorated_outside(
    request: HttpRequest, client: AppClient, session: AsyncSession
) -> JsonResponse:
    return JsonResponse(answer(client, session))


sessions_list = Sessions.as_view({"get": "list"})

urlpatterns = [
    path("view-sync/", SyncGet.as_view()),
    path("view-async/", AsyncGet.as_view()),
    path("dispatch-sync/", SyncDispatch.as_view()),
    path("dispatch-async/", AsyncDispatch.as_view()),
    path("context-data/", ContextData.as_view()),
    path("drf-viewset/", sessions_list),
    path("drf-apiview/", SessionAPIView.as_view()),
    path("drf-api-view-outside/", api_view_outside),
    path("drf-api-view-inside/", api_view_inside),
    path("ninja/", api.urls),
    path("decorated-inside/", decorated_inside),
    path("decorated-outside/", decorated_outside),
    path("async-decorated-inside/", async_decorated_inside),
    path("async-decorated-outside/", async_decorated_outside),
]
