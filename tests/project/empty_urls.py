"""A URLconf without views, for tests that run containers other than the project's."""

urlpatterns: list[object] = []
