import threading

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

from tests.servers import views


def backend(request: HttpRequest) -> JsonResponse:
    """One query: the PostgreSQL backend serving this thread's connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return JsonResponse({"backend": pid, "thread": threading.current_thread().name})


urlpatterns = [path("ready/", views.ready), path("backend/", backend)]
