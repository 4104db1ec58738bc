"""The throwaway PostgreSQL server the PostgreSQL tests and benchmarks start."""

from __future__ import annotations

import contextlib
import os

import psycopg

from tests.processes import backend_pids, postgres_server


def test_server_serves_its_database_and_is_gone_afterwards() -> None:
    """The server answers on its socket, counts one backend per connection, then stops and its directory goes."""
    with postgres_server() as pg, contextlib.ExitStack() as stack:
        connections = [
            stack.enter_context(psycopg.connect(pg.conninfo())) for _ in range(3)
        ]
        answers = [conn.execute("SELECT 1").fetchone() for conn in connections]
        own_pids = {conn.info.backend_pid for conn in connections}
        assert answers == [(1,)] * 3
        assert len(own_pids) == 3
        assert backend_pids(pg) == own_pids
        stack.close()
        assert os.path.exists(f"/proc/{pg.pid}")
    # Stopped by its PID and reaped: no process has that PID any more.
    assert not os.path.exists(f"/proc/{pg.pid}")
    assert not pg.directory.exists()


def test_django_settings_connect_as_the_test_role() -> None:
    """django_settings() names the socket directory, the role and its database."""
    with postgres_server(user="someone", database="elsewhere") as pg:
        settings = pg.django_settings()
        assert settings["ENGINE"] == "django.db.backends.postgresql"
        with psycopg.connect(
            host=settings["HOST"],
            port=settings["PORT"],
            user=settings["USER"],
            dbname=settings["NAME"],
        ) as conn:
            row = conn.execute("SELECT current_user, current_database()").fetchone()
        assert row == ("someone", "elsewhere")
