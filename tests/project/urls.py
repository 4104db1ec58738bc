from django.urls import path

from tests.project import request_views, thread_views, views

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
    path("threads/sync/", thread_views.sync_view),
    path("threads/async/", thread_views.async_view),
    path("threads/connection/", thread_views.connection_view),
    path("threads/atomic/", thread_views.atomic_view),
]
