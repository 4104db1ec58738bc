"""Servers that send no lifespan events: reading resources fails with a clear error."""

from __future__ import annotations

import pytest

from tests.servers.conftest import Launch
from tests.servers.harness import DAPHNE, RUNSERVER, Spec

pytestmark = pytest.mark.servers

CLEAR_ERROR = (
    "LifespanNotRunningError: Cannot use {what}: no lifespan is running in this "
    "process, so no resources were started. Either the server sent no lifespan "
    "events (daphne and Django's WSGI runserver never do"
)


@pytest.mark.parametrize("spec", [DAPHNE, RUNSERVER], ids=str)
def test_reading_resources_without_lifespan_raises_the_clear_error(
    launch: Launch, spec: Spec
) -> None:
    """Under daphne and `runserver --nolifespan` no resource starts, and request.state and inject fail with LifespanNotRunningError saying why."""
    server = launch(spec)
    server.wait_ready()

    with server.client() as client:
        plain = client.get("/ready/")
        state = client.get("/state/")
        injected = client.get("/async-inject/")
    log = server.log()

    assert plain.status_code == 200  # views that use no resource are unaffected
    assert state.status_code == injected.status_code == 500
    assert CLEAR_ERROR.format(what="request.state") in log
    injected_log = log.split("/async-inject/", 1)[1]
    assert "LifespanNotRunningError: Cannot use " in injected_log
    assert "for parameter 'pool' of" in injected_log
    assert server.names() == []
