from django.urls import path

from example_app import views

urlpatterns = [
    path("fetch/", views.fetch),
    path("status/", views.status),
]
