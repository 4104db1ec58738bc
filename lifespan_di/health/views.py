"""``live/`` and ``ready/``: the liveness and readiness endpoints.

``live/`` answers 200 without touching a resource. ``ready/`` answers 200 only while
a lifespan runs (startup complete, shutdown not begun) and every check declared in
the container's ``HEALTH_CHECKS`` passes; all checks run concurrently under
``LIFESPAN_DI['HEALTH_CHECK_TIMEOUT']``. See docs/health.md.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from lifespan_di.compat.django import mark_logged
from lifespan_di.conf import (
    DEFAULT_HEALTH_CHECK_TIMEOUT,
    container_configured,
    get_settings,
)
from lifespan_di.core.lifespan import running_lifespan
from lifespan_di.health.checks import checked_resources, run_checks

__all__ = ["live", "ready"]


@never_cache
@require_safe
async def live(request: HttpRequest) -> JsonResponse:
    """Answer 200 while the process serves requests; touch no resource."""
    return JsonResponse({"status": "alive"})


@never_cache
@require_safe
async def ready(request: HttpRequest) -> JsonResponse:
    """Answer 200 if the lifespan runs and every health check passes, else 503.

    The body lists each named resource: ``"started"`` when it has no check,
    otherwise the check's status and latency; with ``DEBUG`` on, why it failed.
    """
    scope = getattr(request, "scope", None)
    lifespan = running_lifespan(state=scope.get("state") if scope else None)
    if lifespan is None:
        return _answer("not running", {})
    results = await run_checks(lifespan, timeout=_timeout())
    if not lifespan.running:  # shutdown began while the checks ran
        return _answer("not running", {})
    debug = settings.DEBUG
    resources: dict[str, dict[str, object]] = {}
    for name in checked_resources(lifespan):
        result = results.get(name)
        if result is None:
            resources[name] = {"status": "started"}
            continue
        resources[name] = {
            "status": result.status,
            "latency_ms": round(result.latency_ms, 2),
        }
        if debug and result.status != "ok":
            resources[name]["error"] = result.detail
    return _answer("running", resources)


def _answer(lifespan: str, resources: dict[str, dict[str, object]]) -> JsonResponse:
    ok = lifespan == "running" and all(
        entry["status"] in ("ok", "started") for entry in resources.values()
    )
    body = {
        "status": "ready" if ok else "not ready",
        "lifespan": lifespan,
        "resources": resources,
    }
    response = JsonResponse(body, status=200 if ok else 503)
    if not ok:
        # Django logs every 5xx at ERROR; a probe every few seconds would flood the
        # logs. Failing checks are logged once per change instead (_Check.report).
        mark_logged(response)
    return response


def _timeout() -> float:
    if not container_configured():
        return DEFAULT_HEALTH_CHECK_TIMEOUT
    return get_settings().health_check_timeout
