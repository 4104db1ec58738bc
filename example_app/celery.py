"""The example's Celery app: ``celery --app=example_app worker`` runs its tasks.

The broker is Redis, at ``EXAMPLE_BROKER_URL`` (default ``redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import os

from celery import Celery

import lifespan_di.celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_app.settings")

# --8<-- [start:install]
app = Celery("example_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
lifespan_di.celery.install(app)
# --8<-- [end:install]
