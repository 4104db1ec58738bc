"""A URLconf whose view names a provider the container does not have (for check E007)."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views import View

from lifespan_di import Provide, inject


@inject
def typo(request: HttpRequest, client: Any = Provide["htpx_client"]) -> HttpResponse:
    return HttpResponse()


class TypoView(View):
    @inject
    def get(self, request: HttpRequest, cache: Any = Provide["cache"]) -> HttpResponse:
        return HttpResponse()


urlpatterns = [
    path("nested/", include([path("typo/", typo)])),
    path("class/", TypoView.as_view()),
]
