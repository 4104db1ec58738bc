from django.urls import path

from tests.servers import views

urlpatterns = [
    path("ready/", views.ready),
    path("state/", views.sync_state),
    path("sync-inject/", views.sync_inject),
    path("async-inject/", views.async_inject),
    path("slow/", views.slow),
    path("boom/", views.boom),
    path("stream/", views.stream),
    path("sessions/", views.sessions),
]
