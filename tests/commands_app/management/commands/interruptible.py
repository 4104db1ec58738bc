"""A LifespanCommand that waits to be interrupted, recording what it saw."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from lifespan_di import Provide, inject
from lifespan_di.management import LifespanCommand
from tests.project.containers import Counter, record


class Command(LifespanCommand):
    help = "Print 'ready', then wait for Ctrl-C."

    @inject
    async def ahandle(
        self, *args: Any, counter: Counter = Provide["counter"], **options: Any
    ) -> None:
        print("ready", flush=True)
        try:
            await asyncio.sleep(60)
        finally:
            record(f"cancelled:counter closed={counter.closed}")
            sys.stdout.flush()
