from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections

from tests.recorder import Recorder


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file the test project's resources write their events to."""
    path = tmp_path / "record"
    path.touch()
    monkeypatch.setenv("LIFESPAN_DI_TEST_RECORD", str(path))
    return path


@pytest.fixture
def sqlite_db(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    django_db_blocker: Any,
) -> Iterator[None]:
    """A migrated SQLite database file as ``default``, for this test only.

    The test project has no database (a configured one would change what
    ``runserver`` and ``request_finished`` do in every other test), and pytest-django's
    own database setup would need one in the settings.
    """
    database = {
        **connections.settings[DEFAULT_DB_ALIAS],
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(tmp_path / "db.sqlite3"),
    }
    monkeypatch.setitem(connections.settings, DEFAULT_DB_ALIAS, database)
    forget_connection()
    with django_db_blocker.unblock():
        call_command("migrate", verbosity=0)
        yield
        forget_connection()


def forget_connection() -> None:
    """Close and drop this thread's ``default`` connection (made now if none)."""
    connections[DEFAULT_DB_ALIAS].close()
    del connections[DEFAULT_DB_ALIAS]
