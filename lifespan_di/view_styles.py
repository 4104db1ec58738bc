"""What ``inject`` must know about view styles beyond plain functions.

- Django's class-based views, DRF's ``APIView`` and Channels' consumers: the markers
  are on the methods of ``view.view_class`` / ``view.cls`` / ``app.consumer_class``.
- DRF's ``@api_view``: it keeps the decorated function only in the closure of the
  handler it installs for each method (``rest_framework/decorators.py``), which is
  where ``inject`` applied on top of it finds the markers. Pinned by
  ``tests/test_upstream.py``.
- django-ninja builds a request schema from the view's signature: the injected
  parameters are hidden from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, cast

__all__ = ["api_view_function", "hide_parameters", "view_functions"]


def api_view_function(view: Any) -> Callable[..., Any] | None:
    """Return the function that DRF's ``@api_view`` turned into ``view``, or None."""
    view_class = getattr(view, "cls", None)
    for method in getattr(view_class, "http_method_names", ()):
        handler: Any = vars(view_class).get(method)
        code = getattr(handler, "__code__", None)
        if (
            code is not None
            and handler.__qualname__.startswith("api_view.")
            and "func" in code.co_freevars
        ):
            cell = handler.__closure__[code.co_freevars.index("func")]
            return cast("Callable[..., Any]", cell.cell_contents)
    return None


def view_functions(view: Callable[..., Any]) -> list[Any]:
    """Return the functions that may carry ``view``'s markers.

    The view itself, the function behind DRF's ``@api_view``, and the methods of a
    class-based view or of a Channels consumer (``Consumer.as_asgi()``).
    """
    candidates: list[Any] = [view, api_view_function(view)]
    view_class = (
        getattr(view, "view_class", None)
        or getattr(view, "cls", None)
        or getattr(view, "consumer_class", None)
    )
    if view_class is not None:
        candidates += [getattr(view_class, name, None) for name in dir(view_class)]
    return candidates


def hide_parameters(
    wrapper: Callable[..., Any],
    fn: Callable[..., Any],
    signature: inspect.Signature | None,
    names: Iterable[str],
) -> None:
    """Describe ``wrapper`` as ``fn`` without the parameters ``names``.

    Frameworks that build a request schema from the signature (django-ninja, via
    pydantic) must not see injected parameters as request fields. A
    ``__signature__`` also stops ``inspect.signature`` from following ``__wrapped__``
    back to them. Its annotations are evaluated: django-ninja resolves string
    annotations in ``wrapper.__globals__``, which is not ``fn``'s module.
    """
    hidden = set(names)
    if signature is None:
        signature = inspect.signature(fn)
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for p in signature.parameters.values() if p.name not in hidden]
    )
    # functools.wraps shares fn's dict: build a new one, never mutate it.
    wrapper.__annotations__ = {
        name: annotation
        for name, annotation in getattr(fn, "__annotations__", {}).items()
        if name not in hidden
    }
