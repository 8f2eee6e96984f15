"""The OpenAPI document: what the webhook takes and answers, beyond what FastAPI infers.

The webhook reads its body itself (the size limit comes before parsing, and every refusal
has reactor's error shape), so FastAPI cannot see its request body: it is declared here
from the event model, with the thin sample events of examples/events/ as examples. Errors
are answered in one shape (api/errors.py), which replaces FastAPI's validation error
schema everywhere.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import ErrorAnswer
from core.events import EVENT_ID_PATTERN, LikeMagicEvent, Topic
from core.examples import sample_events

REF = "#/components/schemas/{model}"
EVENT_REF = REF.format(model="LikeMagicEvent")
ERROR_REF = REF.format(model="ErrorAnswer")
# FastAPI's own shape for request validation errors: reactor answers ErrorAnswer instead.
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")

EVENT_DESCRIPTION = (
    "One business event as LIKE MAGIC POSTs it. Only `id` and `topic` are required; "
    "unknown topics, enum values and extra fields are accepted and kept. `context` is "
    "topic-specific: the platform documents it for a few topics only (RESERVATION_CREATED "
    "carries the guest; RESERVATION_CHECKED_IN only `checkedInBy` and `userProfileId`)."
)


def event_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The event's JSON schema and the schemas it refers to."""
    schema = LikeMagicEvent.model_json_schema(by_alias=True, ref_template=REF)
    refs: dict[str, Any] = schema.pop("$defs", {})
    schema["description"] = EVENT_DESCRIPTION
    properties = schema["properties"]
    properties["id"]["pattern"] = f"^{EVENT_ID_PATTERN.pattern}$"
    properties["id"]["description"] = (
        "Unique per event (a UUID); the deduplication key and the router's workflow ID."
    )
    properties["topic"] = {
        "title": "Topic",
        "description": "A topic of the platform's TopicEnum; a newer one is accepted and "
        "routed to no reaction. RESERVATION_CANCELED is read as RESERVATION_CANCELLED.",
        "anyOf": [{"$ref": REF.format(model="Topic")}, {"type": "string", "minLength": 1}],
    }
    refs["Topic"] = {
        "title": "Topic",
        "type": "string",
        "enum": [topic.value for topic in Topic],
        "description": "Every topic the platform documents.",
    }
    return schema, refs


def _examples() -> dict[str, Any]:
    return {
        name: {"summary": event.get("topic", name), "value": event}
        for name, event in sample_events().items()
    }


def _replace_validation_errors(node: Any) -> None:
    """Point every use of FastAPI's validation error schema at ErrorAnswer."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in FASTAPI_VALIDATION:
            node["$ref"] = ERROR_REF
        for value in node.values():
            _replace_validation_errors(value)
    elif isinstance(node, list):
        for value in node:
            _replace_validation_errors(value)


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, complete."""
    spec = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    schemas: dict[str, Any] = spec.setdefault("components", {}).setdefault("schemas", {})
    event, refs = event_schema()
    schemas.update(refs)
    schemas["LikeMagicEvent"] = event
    error = ErrorAnswer.model_json_schema(ref_template=REF)
    schemas.update(error.pop("$defs", {}))
    schemas["ErrorAnswer"] = error
    for name in FASTAPI_VALIDATION:
        schemas.pop(name, None)
    _replace_validation_errors(spec["paths"])
    examples = _examples()
    for operations in spec["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content and content.get("schema", {}).get("$ref") == EVENT_REF and examples:
                content["examples"] = examples
    return spec


def install(app: FastAPI) -> None:
    """Serve ``document(app)`` as /openapi.json (built once, on the first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
