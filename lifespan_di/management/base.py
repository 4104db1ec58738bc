"""``LifespanCommand``: a management command whose body is ``async def``.

Django's ``BaseCommand.execute()`` calls ``handle()`` synchronously and reads its
result as text, so an ``async def handle`` only returns a coroutine (``AttributeError:
'coroutine' object has no attribute 'endswith'``). ``LifespanCommand`` keeps
``handle()`` sync: it enters ``lifespan()`` and runs the async body, ``ahandle()``,
on the event loop that owns the resources.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction
from django.core.management.base import BaseCommand

from lifespan_di.exceptions import ConfigurationError
from lifespan_di.standalone import lifespan, run

__all__ = ["LifespanCommand"]


class LifespanCommand(BaseCommand):
    """A management command that runs ``async def ahandle()`` with the resources.

    The resources start (after Django's system checks) as they would under the
    server; ``ahandle()`` runs on the event loop that owns them, so ``inject`` and
    loop-bound clients work in it; they are shut down when it returns or raises,
    and on Ctrl-C, which cancels ``ahandle()`` first so that its own cleanup still
    finds them open. What it returns is written out, as ``handle()``'s would be.

    Raises:
        ConfigurationError: When a subclass is defined with an ``async def handle``
            or a sync ``ahandle``.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handle = cls.__dict__.get("handle")
        ahandle = cls.__dict__.get("ahandle")
        if handle is not None and iscoroutinefunction(handle):
            msg = (
                f"Cannot define {cls.__qualname__}.handle() as async def: Django "
                "calls handle() synchronously. Name it `async def ahandle(self, "
                "*args, **options)`: LifespanCommand runs it."
            )
            raise ConfigurationError(msg)
        if ahandle is not None and not iscoroutinefunction(ahandle):
            msg = (
                f"Cannot use {cls.__qualname__}.ahandle(): it must be `async def`. "
                "For a sync command, subclass BaseCommand and decorate handle() with "
                "@with_lifespan."
            )
            raise ConfigurationError(msg)

    def handle(self, *args: Any, **options: Any) -> str | None:
        with lifespan():
            return run(self.ahandle(*args, **options))

    async def ahandle(self, *args: Any, **options: Any) -> str | None:
        """The command's body, run on the resources' event loop."""
        msg = "subclasses of LifespanCommand must provide an ahandle() method"
        raise NotImplementedError(msg)
