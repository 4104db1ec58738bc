"""``ViewResource``: a request resource closed as the view returns, before responding.

A ``RequestResource`` closes after the response has been sent, so a teardown that
fails there (a commit) can only be logged: the client already has its ``200``. A
``ViewResource`` closes as the view returns or raises, as Django's ``ATOMIC_REQUESTS``
commits, so that a failing teardown is an exception of the view, which Django turns
into its 500 (``handler500``, logged by ``django.request``).

``LifespanASGIHandler`` wraps the view where Django wraps it for ``ATOMIC_REQUESTS``
(``BaseHandler.make_view_atomic``, pinned in tests/test_upstream.py), inside that
transaction. Where ``LifespanStateMiddleware`` opens the request scope (Django's test
clients, WSGI), they close when the response comes back through the middleware,
still before it is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from dependency_injector import containers
from django.http import HttpRequest

from lifespan_di.entry import Entry
from lifespan_di.exceptions import RequestScopeError
from lifespan_di.providers import RequestResource, request_resources
from lifespan_di.scope import CURRENT, RequestScope, aclose_entries, close_entries

__all__ = [
    "ViewResource",
    "aend_view",
    "closing_view_resources",
    "end_view",
    "lifetime_problems",
]

T = TypeVar("T")


class ViewResource(RequestResource[T]):
    """A request resource closed when the view returns, before the response starts.

    Declared and used exactly like ``RequestResource``, for what must end before the
    client is answered, such as a unit of work that commits:

    ```python
    class Container(containers.DeclarativeContainer):
        pool = providers.Resource(create_pool)
        uow = ViewResource(unit_of_work, pool=pool)
    ```

    Its teardown runs when the view returns (or raises: it receives the view's
    exception, so it can roll back), in the view's thread for a sync view, before
    Django's response path: template rendering, the middleware's responses, sending.
    A teardown that raises after the view returned becomes the view's exception,
    hence Django's 500 through ``handler500``. Using it after that (in a streamed
    body) raises ``RequestScopeError``; a ``RequestResource`` may not depend on it.
    """

    __slots__ = ()

    closes_with_view = True


def closing_view_resources(view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``view`` so that the ``ViewResource`` instances it opened close with it.

    Only the request's view is wrapped, so a view calling another view function
    closes them once, when the outer one returns. The handler wraps no view while no
    ``ViewResource`` exists in the process: such projects pay nothing.
    """
    try:
        return _WRAPPERS[view]
    except KeyError:
        if len(_WRAPPERS) >= _MOST_WRAPPERS:
            _WRAPPERS.clear()
        wrapper = _WRAPPERS[view] = _wrap(view)
    except TypeError:  # not hashable: wrapped afresh each time
        wrapper = _wrap(view)
    return wrapper


_WRAPPERS: dict[Callable[..., Any], Callable[..., Any]] = {}
"""Each view's wrapper: Django asks for one per request, and making it costs 2 µs.

A plain dict, bounded: a weak one would keep every view alive anyway (the wrapper
refers to it) and costs 0.4 µs more per lookup; views made per request would grow it.
"""
_MOST_WRAPPERS = 1024


def _wrap(view: Callable[..., Any]) -> Callable[..., Any]:
    wrapper = _async_wrapper(view) if iscoroutinefunction(view) else _wrapper(view)
    # Django's make_view_atomic reads it from the view it wraps: ours.
    non_atomic = getattr(view, "_non_atomic_requests", None)
    if non_atomic is not None:
        wrapper._non_atomic_requests = non_atomic  # type: ignore[attr-defined]
    return wrapper


def _wrapper(view: Callable[..., Any]) -> Callable[..., Any]:
    def close_after_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        scope = CURRENT.get()
        if scope is None:
            return view(request, *args, **kwargs)
        try:
            response = view(request, *args, **kwargs)
        except BaseException as error:
            end_view(scope, error)
            raise
        failure = end_view(scope, None)
        if failure is not None:
            raise failure
        return response

    return close_after_view


def _async_wrapper(view: Callable[..., Any]) -> Callable[..., Any]:
    async def close_after_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        scope = CURRENT.get()
        if scope is None:
            return await view(request, *args, **kwargs)
        try:
            response = await view(request, *args, **kwargs)
        except BaseException as error:
            await aend_view(scope, scope.outcome(error))
            raise
        closing = scope.end_view()
        if closing:  # no coroutine to create in the common case: nothing to close
            await aclose_entries(list(closing), None)
            failure = _failure(closing, None)
            if failure is not None:
                raise failure
        return response

    return close_after_view


def end_view(
    scope: RequestScope, exception: BaseException | None
) -> RequestScopeError | None:
    """Close the view resources of ``scope`` from sync code; return their failure.

    ``exception`` is the view's, passed to each teardown. When the view returned
    (``exception`` is None) and a teardown raised, the error to raise instead of
    returning the response; a teardown failing after the view raised is logged only,
    and the view's exception goes on.
    """
    closing = scope.end_view()
    if not closing:
        return None
    close_entries(list(closing), exception)
    return _failure(closing, exception)


async def aend_view(
    scope: RequestScope, exception: BaseException | None
) -> RequestScopeError | None:
    """``end_view()`` for async code: a sync resource closes in the request's thread."""
    closing = scope.end_view()
    if not closing:
        return None
    await aclose_entries(list(closing), exception)
    return _failure(closing, exception)


def _failure(
    closed: list[Entry], exception: BaseException | None
) -> RequestScopeError | None:
    failed = [entry for entry in closed if entry.error is not None]
    if exception is not None or not failed:
        return None
    cause = failed[-1].error  # the first to close: the newest
    names = ", ".join(repr(entry.name) for entry in reversed(failed))
    msg = (
        f"Cannot answer with the view's response: closing its view resources "
        f"{names} raised {cause!r}, so the work they did may not be saved. Django "
        "answers with its error handling (handler500) instead."
    )
    error = RequestScopeError(msg)
    error.__cause__ = cause
    return error


def lifetime_problems(container: containers.Container) -> list[str]:
    """Describe each ``RequestResource`` of ``container`` built on a ``ViewResource``.

    It would outlive the view, and keep using what closed when the view returned.
    """
    return [
        f"The request resource {name!r} depends on the view resource "
        f"{dependency.name!r}: {dependency.name!r} closes when the view returns, "
        f"while {name!r} lives until the response has been sent. Declare {name!r} "
        f"as ViewResource too, or {dependency.name!r} as RequestResource."
        for name, provider in request_resources(container).items()
        if not provider.closes_with_view
        for dependency in provider.dependencies
        if dependency.closes_with_view
    ]
