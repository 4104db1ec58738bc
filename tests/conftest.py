from __future__ import annotations

from pathlib import Path

import pytest

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
