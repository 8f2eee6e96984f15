"""POST /webhooks/likemagic: verify, validate, hand to Temporal or the intake queue, answer.

The answer is 200 only once the event is durable: Temporal holds it (a started router
workflow, or one that already existed), or the intake queue has it on disk, from where
the forwarder hands it to Temporal (api/intake.py).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import to_json
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ErrorAnswer, error_response
from api.intake import Intake, is_unavailable, object_key, start_router
from core.events import MAX_EVENT_BYTES, MAX_NESTING, LikeMagicEvent, nesting_depth
from core.logging import fields
from core.settings import Settings

SECRET_HEADER = "lm-webhook-secret"
EVENT_SCHEMA_REF = "#/components/schemas/LikeMagicEvent"

log = logging.getLogger("reactor.webhook")
router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class Held(BaseModel):
    """200: Temporal holds the event; its router's workflow ID is the event id."""

    status: Literal["accepted", "duplicate"] = Field(
        description="`accepted`: its router started now; `duplicate`: a redelivery of an "
        "event already held (started, or waiting in the intake queue)"
    )
    eventId: str
    workflowId: str
    runId: str | None = Field(description="The router's run; null while the event is queued")
    queued: bool | None = Field(
        default=None, description="true: the event this duplicates waits in the intake queue"
    )


class Queued(BaseModel):
    """200: the intake queue holds the event on disk until Temporal takes it."""

    status: Literal["queued"]
    eventId: str
    reason: Literal[
        "temporal_down",
        "temporal_slow",
        "temporal_unavailable",
        "temporal_refused",
        "behind_object",
    ] = Field(
        description="Why it waits: Temporal down, slow, refusing, or an older event of "
        "the same object still queued"
    )


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


def _too_deep() -> Answer:
    return Answer(
        error_response(
            422, "too_deep", f"arrays and objects nest deeper than {MAX_NESTING} levels"
        ),
        "invalid",
    )


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
    try:
        raw = json.loads(body)
    except RecursionError:
        return _too_deep()
    except (ValueError, UnicodeDecodeError) as err:
        return Answer(
            error_response(400, "invalid_json", f"the body is not valid JSON: {err}"), "invalid"
        )
    if nesting_depth(raw) > MAX_NESTING:
        return _too_deep()
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

    return await _hand_over(request.app.state.intake, settings, temporal, event, raw, seen)


def _held(
    status: str, event_id: str, run_id: str | None, seen: dict[str, Any], **more: Any
) -> Answer:
    """A 200 for an event Temporal holds (its router's workflow ID is the event id)."""
    answer = Held(status=status, eventId=event_id, workflowId=event_id, runId=run_id, **more)  # type: ignore[arg-type]
    return Answer(JSONResponse(answer.model_dump(exclude_unset=True)), status, seen)


async def _hand_over(
    intake: Intake,
    settings: Settings,
    temporal: Any,
    event: LikeMagicEvent,
    raw: dict[str, Any],
    seen: dict[str, Any],
) -> Answer:
    """Start the router within the budget; else (Temporal down, slow or refusing, or older
    events of the same object waiting) queue the event. Only a failed queue write is 503."""
    started = time.monotonic()
    key = object_key(event)
    reason = "temporal_down" if intake.breaker.open else None
    if reason is None and key and intake.forwarder.last_depth:
        try:
            if await asyncio.wait_for(intake.queue.holds_object(key), 1.0):
                reason = "behind_object"
        except Exception:  # noqa: BLE001 - the store is slow or down: Temporal may take it
            pass
    error: str | None = None
    if reason is None:
        try:
            handle = await start_router(
                temporal, settings, event, settings.intake_start_budget_seconds
            )
        except WorkflowAlreadyStartedError as err:
            return _held("duplicate", event.id, err.run_id, seen)
        except Exception as err:  # noqa: BLE001 - whatever went wrong, the queue keeps it
            if isinstance(err, RPCError) and err.status == RPCStatusCode.INVALID_ARGUMENT:
                # Temporal will never take this event: queueing or retrying it would only
                # repeat the refusal.
                return Answer(
                    error_response(
                        422, "refused_by_temporal", f"Temporal refused the event: {err.message}"
                    ),
                    "invalid",
                    seen,
                )
            if is_unavailable(err):
                reason = (
                    "temporal_slow" if isinstance(err, TimeoutError) else "temporal_unavailable"
                )
                intake.breaker.trip(f"{type(err).__name__} on the webhook")
            else:
                reason = "temporal_refused"
                status = err.status.name if isinstance(err, RPCError) else type(err).__name__
                error = f"Temporal refused it ({status})"
                log.error(
                    "temporal refused the start; queued",
                    extra=fields(**seen, workflow_id=event.id, rpc_status=status),
                )
        else:
            return _held("accepted", event.id, handle.result_run_id, seen)
    remaining = settings.webhook_ack_timeout_seconds - (time.monotonic() - started)
    try:
        async with asyncio.timeout(max(0.1, remaining)):
            new = await intake.queue.add(event.id, event.topic, key, json.dumps(raw), reason)
    except Exception as err:  # noqa: BLE001 - not stored: not acknowledged
        log.error(
            "intake queue write failed",
            extra=fields(**seen, reason=reason, error=type(err).__name__),
        )
        return Answer(
            error_response(
                503,
                "intake_unavailable",
                "Temporal could not take the event and the intake queue could not store it",
                headers={"Retry-After": str(settings.webhook_retry_after_seconds)},
            ),
            "unavailable",
            seen,
        )
    if error and new:
        await intake.queue.release([event.id], error)
    intake.forwarder.last_depth = max(1, intake.forwarder.last_depth)
    if reason == "behind_object":
        intake.forwarder.wake.set()
    if not new:
        return _held("duplicate", event.id, None, seen, queued=True)
    queued = Queued(status="queued", eventId=event.id, reason=reason)  # type: ignore[arg-type]
    return Answer(JSONResponse(queued.model_dump()), "queued", seen)


def _refusal(description: str) -> dict[str, Any]:
    return {"model": ErrorAnswer, "description": description}


@router.post(
    "/likemagic",
    summary="Receive one LIKE MAGIC business event",
    responses={
        200: {
            "model": Held | Queued,
            "description": "Held: `accepted` (Temporal started its router), `queued` (in the "
            "intake queue until Temporal takes it), or `duplicate` for a redelivery",
        },
        400: _refusal("`invalid_json`: the body is not JSON"),
        401: _refusal("`unauthorized`: missing or wrong lm-webhook-secret"),
        413: _refusal("`payload_too_large`: the body is over WEBHOOK_MAX_BODY_BYTES"),
        422: _refusal(
            "`invalid_event` (no usable id or topic, an id over 200 characters, not an "
            "object), `too_deep` (nesting deeper than 64 levels), `event_too_large` (over "
            "512 KiB as Temporal stores it), `refused_by_temporal` (refused for good)"
        ),
        503: _refusal(
            "`intake_unavailable`: Temporal and the intake queue both failed; not stored, "
            "retry after Retry-After seconds"
        ),
    },
    # The handler reads the body itself (the size limit before parsing), so FastAPI cannot
    # infer it; api/openapi.py adds the sample events as examples.
    openapi_extra={
        "parameters": [
            {
                "name": SECRET_HEADER,
                "in": "header",
                "required": True,
                "description": "The subscription's shared secret, verbatim (any of "
                "WEBHOOK_SECRET's comma-separated secrets while rotating)",
                "schema": {"type": "string"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": EVENT_SCHEMA_REF}}},
        },
    },
)
async def receive_event(request: Request) -> JSONResponse:
    """Verify the event and start its router workflow (workflow ID = event id)."""
    started = time.perf_counter()
    state = request.app.state
    answer = await _handle(request, state.settings, state.temporal)
    held = answer.outcome in ("accepted", "duplicate", "queued")
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


WEBHOOK_PATH = router.prefix + "/likemagic"


class WebhookLane:
    """Hands ``POST /webhooks/likemagic`` to ``receive_event`` as soon as it enters the app,
    past FastAPI's exception, exit-stack and routing layers, which the endpoint uses none
    of (it answers its own errors; an exception still reaches the server-error layer, a
    500). About a third of the CPU of a queued acknowledgement (bench/README.md). Every
    other request, and this path behind a proxy's root_path, takes the app's routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH and scope["method"] == "POST":
            response = await receive_event(Request(scope, receive, send))
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)
