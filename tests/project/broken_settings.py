"""The test project's settings, broken in the way ``LIFESPAN_DI_TEST_BROKEN`` names.

``BROKEN`` maps each check id that fails the lifespan startup to settings that cause
exactly that problem; the tests apply the same entry in process with
``override_settings``, and through this module in a ``manage.py`` subprocess.
"""

from __future__ import annotations

import os
from typing import Any

from dependency_injector import containers

from tests.project.settings import *  # noqa: F403

MISSING = object()
"""Stands for a setting removed altogether."""

CONTAINER = "tests.project.containers.Container"


class Unwirable(containers.DeclarativeContainer):
    """Instantiating it raises: it wires a module that does not exist."""

    wiring_config = containers.WiringConfiguration(modules=["tests.project.nope"])


BROKEN: dict[str, dict[str, Any]] = {
    "lifespan_di.E001": {"LIFESPAN_DI": MISSING},
    "lifespan_di.E002": {"LIFESPAN_DI": CONTAINER},
    "lifespan_di.E003": {"LIFESPAN_DI": {"CONTAINER": "tests.project.nope.Container"}},
    "lifespan_di.E004": {
        "LIFESPAN_DI": {"CONTAINER": "tests.project.containers.Greeter"}
    },
    "lifespan_di.E005": {"LIFESPAN_DI": {"CONTAINER": CONTAINER, "STARTUP_TIMEOUT": 0}},
    "lifespan_di.E007": {"ROOT_URLCONF": "tests.project.broken_urls"},
    "lifespan_di.E008": {
        "LIFESPAN_DI": {"CONTAINER": "tests.project.health_containers.NotAMapping"},
        "ROOT_URLCONF": "tests.project.empty_urls",
    },
    "lifespan_di.E009": {"LIFESPAN_DI": {"CONTAINER": CONTAINER, "TIMEOUT": 30}},
    "lifespan_di.E010": {"LIFESPAN_DI": {"STARTUP_TIMEOUT": 10.0}},
    "lifespan_di.E011": {
        "LIFESPAN_DI": {"CONTAINER": "tests.project.broken_settings.Unwirable"}
    },
    "lifespan_di.E012": {
        "LIFESPAN_DI": {"CONTAINER": CONTAINER, "HEALTH_CHECK_TIMEOUT": None}
    },
}

_broken = os.environ.get("LIFESPAN_DI_TEST_BROKEN")
if _broken is not None:
    for _name, _value in BROKEN[_broken].items():
        if _value is MISSING:
            del globals()[_name]
        else:
            globals()[_name] = _value
