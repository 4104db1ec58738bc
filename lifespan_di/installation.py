"""Whether lifespan_di is in ``INSTALLED_APPS``, and whose ``runserver`` Django runs.

Django takes each management command from the first app in ``INSTALLED_APPS`` that
has it. Without lifespan_di there, or with it below an app that has its own
``runserver`` (``django.contrib.staticfiles``, ``daphne``), ``manage.py runserver``
serves with no lifespan, and without it there ``manage.py check`` never runs its
checks. This module imports nothing of lifespan_di: error messages ask it too.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management import get_commands

__all__ = ["APP", "STATICFILES", "missing", "runserver_cause", "runserver_owner"]

APP = "lifespan_di"
STATICFILES = "django.contrib.staticfiles"


def missing() -> bool:
    """Whether lifespan_di is known not to be in ``INSTALLED_APPS``.

    Known once ``django.setup()`` has populated the app registry; False before.
    """
    return apps.apps_ready and not apps.is_installed(APP)


def runserver_owner() -> str:
    """Return the app whose ``runserver`` Django runs (``"django.core"``: its own)."""
    owner: str = get_commands().get("runserver", "django.core")
    return owner


def runserver_cause() -> str | None:
    """Say why ``manage.py runserver`` runs no lifespan in this project, and the fix.

    Returns None when it is lifespan_di's, or when the app registry is not ready.
    """
    if not apps.apps_ready:
        return None
    owner = runserver_owner()
    runs = (
        "its own runserver" if owner == "django.core" else f"the runserver of {owner!r}"
    )
    if missing():
        return (
            f"`manage.py runserver` is not lifespan_di's: {APP!r} is not in "
            f"INSTALLED_APPS, so Django runs {runs}, whose server sends no lifespan "
            "events, and lifespan_di's system checks never run. Add 'lifespan_di' "
            f"to INSTALLED_APPS, above {STATICFILES!r}."
        )
    if owner == APP:
        return None
    return (
        f"`manage.py runserver` is not lifespan_di's: {owner!r} comes before "
        f"{APP!r} in INSTALLED_APPS, so Django runs {runs}, whose server sends no "
        f"lifespan events (lifespan_di.W001). Move {APP!r} above {owner!r} in "
        "INSTALLED_APPS."
    )
