from django.urls import path

from tests.project import views

urlpatterns = [
    path("async-inject/", views.async_inject),
    path("sync-inject/", views.sync_inject),
    path("sync-state/", views.sync_state),
    path("slow/", views.slow),
    path("plain/", views.plain),
    path("greet/", views.GreetView.as_view()),
]
