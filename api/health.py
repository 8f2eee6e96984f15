"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import TemporalDep
from api.errors import error_response

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(temporal: TemporalDep) -> dict[str, str] | JSONResponse:
    """Temporal is reachable: 200, else 503."""
    try:
        await asyncio.wait_for(
            temporal.service_client.check_health(timeout=timedelta(seconds=2)), timeout=2.5
        )
    except Exception as err:  # noqa: BLE001 - any failure means not ready
        return error_response(
            503, "temporal_unavailable", f"Temporal is not reachable: {type(err).__name__}"
        )
    return {"status": "ready"}
