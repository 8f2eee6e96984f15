"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import TemporalDep
from api.errors import error_response

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


async def _temporal_answers(temporal: Any) -> str | None:
    """None when Temporal answers, else why not."""
    try:
        await asyncio.wait_for(
            temporal.service_client.check_health(timeout=timedelta(seconds=1.5)), timeout=2.0
        )
    except Exception as err:  # noqa: BLE001 - any failure means not reachable
        return type(err).__name__ or "no answer"
    return None


@router.get("/readyz", response_model=None)
async def readyz(request: Request, temporal: TemporalDep) -> dict[str, Any] | JSONResponse:
    """200 `ready`: Temporal answers and no event waits. 200 `degraded`: events wait in
    the intake queue, or one of Temporal and the queue is down (events are still taken).
    503: neither can take an event."""
    temporal_problem = await _temporal_answers(temporal)
    intake = request.app.state.intake
    queue: dict[str, Any] | str
    try:
        stats = await asyncio.wait_for(intake.queue.stats(), 2.0)
        queue = {"depth": stats.depth, "oldestAgeSeconds": round(stats.oldest_age_seconds(), 1)}
    except Exception as err:  # noqa: BLE001 - the store is down
        stats = None
        queue = f"unavailable: {type(err).__name__}"
    if temporal_problem and stats is None:
        return error_response(
            503,
            "unavailable",
            f"neither Temporal ({temporal_problem}) nor the intake queue can take events",
        )
    body: dict[str, Any] = {
        "status": "ready" if not temporal_problem and stats and not stats.depth else "degraded",
        "temporal": f"unavailable: {temporal_problem}" if temporal_problem else "ok",
        "intake": queue,
    }
    return body
