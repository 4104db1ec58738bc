from django.urls import path

from tests.project import request_views, views

urlpatterns = [
    path("async-inject/", views.async_inject),
    path("sync-inject/", views.sync_inject),
    path("sync-state/", views.sync_state),
    path("slow/", views.slow),
    path("plain/", views.plain),
    path("greet/", views.GreetView.as_view()),
    path("request/sync/", request_views.sync_view),
    path("request/async/", request_views.async_view),
    path("request/state/", request_views.state_view),
    path("request/fail/", request_views.failing_view),
    path("request/async-fail/", request_views.async_failing_view),
    path("request/stream/", request_views.stream_view),
    path("load/", request_views.load_view),
]
