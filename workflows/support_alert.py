"""Support alert when a guest sends a message: Slack support channel and support email."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from core.events import LikeMagicEvent
from core.guest import Guest
from workflows.common import INTEGRATION_CALL, shorten, text
from workflows.guest import find_guest, has_name
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities, EmailRequest
    from activities.policy import Delivery
    from activities.slack import SlackActivities, SlackMessage, facts, mrkdwn, section
    from activities.teams import TeamsNotice, notice_facts

# How much of the guest's words an alert quotes.
QUOTE_LIMIT = 280


def alert_data(event: LikeMagicEvent, guest: Guest | None) -> dict[str, str | None]:
    words = text(event.context.get("text"))
    return {
        "guest_name": guest.name if guest else None,
        "text": shorten(words, QUOTE_LIMIT) if words else None,
        "reservation_id": text(event.context.get("reservationId")),
        "conversation_id": text(event.context.get("conversationId")),
        "channel": text(event.context.get("channel")),
        "property_id": event.pms_property_id,
        "event_id": event.id,
    }


def slack_alert(data: dict[str, str | None], workflow_id: str | None = None) -> SlackMessage:
    # The guest's name and words are theirs to choose: escaped, they stay text.
    who = mrkdwn(data["guest_name"] or "A guest")
    quote = mrkdwn(data["text"] or "(no text in the event)")
    where = f" ({mrkdwn(data['reservation_id'])})" if data["reservation_id"] else ""
    shown = [
        ("Reservation", data["reservation_id"]),
        ("Channel", data["channel"]),
        ("Conversation", data["conversation_id"]),
        ("Property", data["property_id"]),
    ]
    # Teams: plain text runs, which Teams never reads as Markdown.
    card = TeamsNotice(
        title=f"{data['guest_name'] or 'A guest'} wrote",
        quote=data["text"] or "(no text in the event)",
        facts=notice_facts(shown),
        workflow_id=workflow_id,
    )
    return SlackMessage(
        channel="support",
        text=f"{who}{where} wrote: {quote}",
        blocks=[section(f":speech_balloon: *{who}* wrote{where}:\n>{quote}"), facts(shown)],
        card=card,
    )


@workflow.defn
class SupportAlert:
    """On MESSAGE_RECEIVED, alerts support with the guest's words (shortened) and
    the reservation: a message to the support channel (Slack and/or Teams) and an email to
    SUPPORT_EMAIL (kind `support_alert`), both attempted concurrently.

    Who is writing: the event's context, else the journey of the reservation it
    names (``reservationId``), else the guest's LIKE MAGIC profile; unknown, the
    alert still goes out ("A guest") and the outcome says what was tried.
    Either one not configured is skipped; both not configured skips the
    reaction. If either fails for good, the reaction fails after the other one
    was attempted. Nothing to compensate.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        found = await find_guest(event, text(event.context.get("reservationId")), has_name)
        data = alert_data(event, found.guest)
        email = EmailRequest(
            key=workflow.info().workflow_id, kind="support_alert", recipient="support", data=data
        )
        results = await asyncio.gather(
            workflow.execute_activity_method(
                SlackActivities.post_slack,
                slack_alert(data, workflow.info().workflow_id),
                **INTEGRATION_CALL,
            ),
            workflow.execute_activity_method(EmailActivities.send_email, email, **INTEGRATION_CALL),
            return_exceptions=True,
        )
        parts: list[str] = []
        failures: list[str] = []
        for name, result in zip(("slack", "email"), results, strict=True):
            if isinstance(result, ActivityError):
                cause = result.cause
                message = cause.message if isinstance(cause, ApplicationError) else str(result)
                failures.append(f"{name}: {message}")
            elif isinstance(result, BaseException):
                raise result
            elif isinstance(result, Delivery):
                parts.append(f"{name}: {result.status} ({result.detail})")
        parts.append(found.served_by() or found.why_not("guest name"))
        if failures:
            raise ApplicationError("; ".join(failures + parts), non_retryable=True)
        if all(isinstance(r, Delivery) and r.status == "skipped" for r in results):
            return ReactionResult.skipped("; ".join(parts))
        return ReactionResult.done("; ".join(parts))
