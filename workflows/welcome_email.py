"""Welcome email when a guest checks in."""

from __future__ import annotations

import html
from typing import Any

from temporalio import workflow

from core.events import LikeMagicEvent
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.email import (
        EMAIL_RETRY_POLICY,
        EMAIL_SCHEDULE_TO_CLOSE,
        EMAIL_START_TO_CLOSE,
        EmailActivities,
        EmailMessage,
    )


def _text(value: Any) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    return None


def recipient(context: dict[str, Any]) -> str | None:
    """`guestEmail`, else `primaryGuest.email`."""
    guest = context.get("primaryGuest")
    guest_email = guest.get("email") if isinstance(guest, dict) else None
    return _text(context.get("guestEmail")) or _text(guest_email)


def guest_name(context: dict[str, Any]) -> str | None:
    name = _text(context.get("guestName"))
    guest = context.get("primaryGuest")
    if name is None and isinstance(guest, dict):
        parts = [_text(guest.get("firstName")), _text(guest.get("lastName"))]
        name = " ".join(p for p in parts if p) or None
    return name


def compose_welcome(event: LikeMagicEvent, key: str) -> EmailMessage | None:
    """The welcome email for a check-in event, or None when there is no one to send it to."""
    to = recipient(event.context)
    if to is None:
        return None
    name = guest_name(event.context)
    room = _text(event.context.get("roomNumber"))
    place = _text(event.pms_property_id)

    greeting = f"Hello {name}," if name else "Hello,"
    stay = "You are checked in"
    if room:
        stay += f" to room {room}"
    if place:
        stay += f" at {place}"
    stay += "."
    closing = "If there is anything we can do during your stay, just reply to this email."
    subject = f"Welcome, {name}!" if name else "Welcome!"
    text = f"{greeting}\n\nWelcome! {stay}\n\n{closing}\n"
    body = "".join(
        f"<p>{html.escape(part)}</p>" for part in (greeting, f"Welcome! {stay}", closing)
    )
    return EmailMessage(key=key, to=to, subject=subject, text=text, html=f"<html>{body}</html>")


@workflow.defn
class WelcomeEmail:
    """Sends the guest a welcome email on RESERVATION_CHECKED_IN.

    Recipient: ``context.guestEmail`` or ``context.primaryGuest.email``; without one
    the reaction ends as skipped. The send is retried on SendGrid outages and rate
    limits (EMAIL_RETRY_POLICY) and fails at once when SendGrid rejects it.
    Nothing to compensate: it is a single step.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        message = compose_welcome(event, key=workflow.info().workflow_id)
        if message is None:
            return ReactionResult.skipped(
                "no recipient: the event has neither context.guestEmail "
                "nor context.primaryGuest.email"
            )
        receipt = await workflow.execute_activity_method(
            EmailActivities.send_email,
            message,
            start_to_close_timeout=EMAIL_START_TO_CLOSE,
            schedule_to_close_timeout=EMAIL_SCHEDULE_TO_CLOSE,
            retry_policy=EMAIL_RETRY_POLICY,
        )
        return ReactionResult.done(f"welcome email sent via {receipt.provider}")
