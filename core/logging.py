"""Structured logging: JSON lines in production, readable lines in development.

Call sites pass data through ``extra={"fields": {...}}``; only those fields are
written, so nothing reaches a log line by accident (secrets, guest data). Control
characters in a message or a value are escaped in both formats (``\n`` stays two
characters), so a value from a request can never forge a log line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from temporalio import activity


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        # The SDK's workflow and activity loggers carry the workflow in an extra of their
        # own: name it in the same fields as ours.
        context = getattr(record, "temporal_workflow", None) or getattr(
            record, "temporal_activity", None
        )
        if isinstance(context, dict) and context.get("workflow_id"):
            workflow_id = str(context["workflow_id"])
            line.setdefault("workflow_id", workflow_id)
            event_id = event_of(workflow_id, context.get("workflow_type"))
            if event_id:
                line.setdefault("event_id", event_id)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        # json.dumps escapes every control character (ensure_ascii: U+2028 too).
        return json.dumps(line, default=str)


def escaped(value: object) -> str:
    """``value`` as text on one line: control characters (and line or paragraph
    separators) written as escapes, everything else as it is."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = getattr(record, "fields", None)
        tail = ""
        if isinstance(fields, dict):
            tail = " " + " ".join(
                f"{escaped(k)}={escaped(v)}" for k, v in fields.items() if v is not None
            )
        message = escaped(record.getMessage())
        text = f"{stamp} {record.levelname:<7} {record.name}: {message}{tail}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


# Client libraries that write whole request or response bodies (a guest's address,
# name, message text) at DEBUG: kept at INFO whatever LOG_LEVEL says.
BODY_LOGGERS = ("python_http_client", "slack_sdk", "httpcore", "hpack", "authlib")


def quiet_body_loggers() -> None:
    """Keep the libraries of BODY_LOGGERS from writing request bodies to the logs."""
    for name in BODY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    quiet_body_loggers()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log would duplicate our one line per request.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def fields(**values: Any) -> dict[str, Any]:
    """``extra=`` argument carrying structured fields."""
    return {"fields": values}


def event_of(workflow_id: str, workflow_type: object = None) -> str | None:
    """The event a workflow works for: the router's ID is the event id, a reaction's is
    ``<event id>/<reaction>``; other workflows (housekeeping, ...) have none."""
    if workflow_type == "EventRouter":
        return workflow_id
    if "/" in workflow_id:
        return workflow_id.split("/", 1)[0]
    return None


def activity_fields(**values: Any) -> dict[str, Any]:
    """``fields`` plus the running activity's ``workflow_id`` and, when it works for
    an event (the router, or a reaction ``<event id>/<reaction>``), its ``event_id``,
    so every line about an event can be found from either. Explicit values win."""
    if activity.in_activity():
        info = activity.info()
        if info.workflow_id:
            values.setdefault("workflow_id", info.workflow_id)
            event_id = event_of(info.workflow_id, info.workflow_type)
            if event_id:
                values.setdefault("event_id", event_id)
    return fields(**values)
