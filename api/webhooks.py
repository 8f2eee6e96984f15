"""POST /webhooks/likemagic: verify, validate, hand to Temporal, answer.

Nothing else happens on the request path: the answer is 200 only once Temporal
holds the event (a started router workflow, or one that already existed).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from pydantic_core import to_json
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import SettingsDep, TemporalDep
from api.errors import error_response
from core.events import MAX_EVENT_BYTES, MAX_NESTING, LikeMagicEvent, nesting_depth
from core.logging import fields
from core.settings import Settings
from core.temporal import event_search_attributes
from workflows.reaction import RouterResult
from workflows.router import ROUTER_WORKFLOW

SECRET_HEADER = "lm-webhook-secret"

log = logging.getLogger("reactor.webhook")
router = APIRouter(prefix="/webhooks", tags=["webhooks"])

# Statuses that mean "Temporal is not there right now" rather than "Temporal said no".
UNAVAILABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.UNKNOWN,
}


@dataclass
class Answer:
    response: JSONResponse
    outcome: str
    event: dict[str, Any] = field(default_factory=dict)


def _secret_matches(given: str, settings: Settings) -> bool:
    candidate = given.encode()
    matched = False
    # Compare against every secret, in constant time each, without stopping early.
    for secret in settings.webhook_secrets():
        matched |= hmac.compare_digest(candidate, secret)
    return matched


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _validation_details(err: ValidationError) -> list[dict[str, Any]]:
    details = []
    for problem in err.errors():
        loc = problem.get("loc", ())
        details.append(
            {
                "field": ".".join(str(p) for p in loc) or "(body)",
                "problem": problem.get("msg", "invalid"),
            }
        )
    return details


async def _handle(request: Request, settings: Settings, temporal: Any) -> Answer:
    given = request.headers.get(SECRET_HEADER)
    if not given:
        return Answer(
            error_response(401, "unauthorized", f"missing {SECRET_HEADER} header"),
            "unauthorized",
        )
    if not _secret_matches(given, settings):
        return Answer(
            error_response(401, "unauthorized", f"{SECRET_HEADER} does not match"), "unauthorized"
        )

    limit = settings.webhook_max_body_bytes
    body = await _read_body(request, limit)
    if body is None:
        return Answer(
            error_response(413, "payload_too_large", f"the body is larger than {limit} bytes"),
            "invalid",
        )
    too_deep = Answer(
        error_response(
            422, "too_deep", f"arrays and objects nest deeper than {MAX_NESTING} levels"
        ),
        "invalid",
    )
    try:
        raw = json.loads(body)
    except RecursionError:
        return too_deep
    except (ValueError, UnicodeDecodeError) as err:
        return Answer(
            error_response(400, "invalid_json", f"the body is not valid JSON: {err}"), "invalid"
        )
    if nesting_depth(raw) > MAX_NESTING:
        return too_deep
    if not isinstance(raw, dict):
        return Answer(
            error_response(422, "invalid_event", "the event must be a JSON object"), "invalid"
        )
    seen = {
        "event_id": raw.get("id") if isinstance(raw.get("id"), str) else None,
        "topic": raw.get("topic") if isinstance(raw.get("topic"), str) else None,
    }
    try:
        event = LikeMagicEvent.model_validate(raw)
    except ValidationError as err:
        return Answer(
            error_response(
                422,
                "invalid_event",
                "the event lacks a usable id or topic, or an id is too long",
                _validation_details(err),
            ),
            "invalid",
            seen,
        )
    seen = {"event_id": event.id, "topic": event.topic}
    # The size Temporal will hold: the event as the worker's data converter encodes it.
    size = len(to_json(event))
    if size > MAX_EVENT_BYTES:
        return Answer(
            error_response(
                422,
                "event_too_large",
                f"the event is {size} bytes as Temporal would store it; at most "
                f"{MAX_EVENT_BYTES} are accepted",
            ),
            "invalid",
            seen,
        )

    timeout = settings.webhook_ack_timeout_seconds
    retry_after = {"Retry-After": str(settings.webhook_retry_after_seconds)}
    try:
        handle = await asyncio.wait_for(
            temporal.start_workflow(
                ROUTER_WORKFLOW,
                event,
                result_type=RouterResult,
                id=event.id,
                task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=event_search_attributes(event),
                static_summary=f"{event.topic} {event.object_id or ''}".strip()[:200],
                rpc_timeout=timedelta(seconds=timeout),
            ),
            timeout=timeout,
        )
    except WorkflowAlreadyStartedError as err:
        payload = {
            "status": "duplicate",
            "eventId": event.id,
            "workflowId": event.id,
            "runId": err.run_id,
        }
        return Answer(JSONResponse(payload), "duplicate", seen)
    except (TimeoutError, asyncio.CancelledError):
        return Answer(
            error_response(
                503, "temporal_unavailable", "Temporal did not answer in time", headers=retry_after
            ),
            "unavailable",
            seen,
        )
    except RPCError as err:
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            # Temporal will never take this event: retrying it would only repeat the refusal.
            return Answer(
                error_response(
                    422, "refused_by_temporal", f"Temporal refused the event: {err.message}"
                ),
                "invalid",
                seen,
            )
        if err.status in UNAVAILABLE:
            return Answer(
                error_response(
                    503,
                    "temporal_unavailable",
                    f"Temporal is not reachable ({err.status.name})",
                    headers=retry_after,
                ),
                "unavailable",
                seen,
            )
        log.error(
            "temporal refused the start",
            extra=fields(
                **seen, workflow_id=event.id, rpc_status=err.status.name, error=err.message
            ),
        )
        return Answer(
            error_response(
                500,
                "temporal_error",
                f"Temporal refused the event ({err.status.name}): {err.message}",
                headers=retry_after,
            ),
            "error",
            seen,
        )
    except RuntimeError as err:  # the lazy client could not connect
        return Answer(
            error_response(
                503,
                "temporal_unavailable",
                f"Temporal is not reachable: {err}",
                headers=retry_after,
            ),
            "unavailable",
            seen,
        )
    payload = {
        "status": "accepted",
        "eventId": event.id,
        "workflowId": handle.id,
        "runId": handle.result_run_id,
    }
    return Answer(JSONResponse(payload), "accepted", seen)


@router.post(
    "/likemagic",
    summary="Receive one LIKE MAGIC business event",
    responses={
        200: {"description": "Held by Temporal: `accepted`, or `duplicate` for a redelivery"},
        400: {"description": "The body is not JSON"},
        401: {"description": "Missing or wrong lm-webhook-secret"},
        413: {"description": "The body is over the size limit"},
        422: {
            "description": "No usable id or topic, an id over 200 characters, nesting deeper "
            "than 64 levels, or an event over 512 KiB as Temporal stores it"
        },
        503: {"description": "Temporal unreachable or too slow; retry later"},
    },
)
async def receive_event(
    request: Request, settings: SettingsDep, temporal: TemporalDep
) -> JSONResponse:
    """Verify the event and start its router workflow (workflow ID = event id)."""
    started = time.perf_counter()
    answer = await _handle(request, settings, temporal)
    held = answer.outcome in ("accepted", "duplicate")
    elapsed = time.perf_counter() - started
    log.info(
        "webhook",
        extra=fields(
            event_id=answer.event.get("event_id"),
            workflow_id=answer.event.get("event_id") if held else None,
            topic=answer.event.get("topic"),
            outcome=answer.outcome,
            status=answer.response.status_code,
            latency_ms=round(elapsed * 1000, 1),
        ),
    )
    request.app.state.metrics.observe(answer.event.get("topic"), answer.outcome, elapsed)
    return answer.response
