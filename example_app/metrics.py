"""A sync resource: counters of this process, summed up in the log at shutdown."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger("example_app")


class Metrics:
    """Thread-safe counters: a stand-in for a statsd or Prometheus client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def increment(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


# --8<-- [start:resource]
@contextmanager
def create_metrics() -> Iterator[Metrics]:
    """Sync: lifespan_di starts and stops it in a worker thread."""
    metrics = Metrics()
    yield metrics
    logger.info("Counted in this process: %s", metrics.snapshot() or "nothing")


# --8<-- [end:resource]
