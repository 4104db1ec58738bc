from django.urls import include, path

from example_app import upstream, views

urlpatterns = [
    path("", views.index),
    path("quotes/<int:number>/", views.quote),
    path("favourites/", views.FavouritesView.as_view()),
    path("stats/", views.stats),
    path("status/", views.status),
    path("lifespan/", views.lifespan_report),
    # --8<-- [start:health]
    path("health/", include("lifespan_di.urls")),
    # --8<-- [end:health]
    # The upstream service, served here so that the example runs offline.
    path("upstream/quotes/<int:number>/", upstream.upstream_quote),
]
