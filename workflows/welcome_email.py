"""Welcome email when a guest checks in."""

from __future__ import annotations

from temporalio import workflow

from core.events import LikeMagicEvent
from workflows.common import guest_name, recipient, send_guest_email, text
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailRequest


NO_RECIPIENT = (
    "no recipient: the event has neither context.guestEmail nor context.primaryGuest.email"
)


def welcome_request(event: LikeMagicEvent, key: str) -> EmailRequest | None:
    """The welcome email for a check-in event, or None when there is no one to send it to."""
    to = recipient(event.context)
    if to is None:
        return None
    return EmailRequest(
        key=key,
        kind="welcome",
        to=to,
        data={
            "guest_name": guest_name(event.context),
            "room_number": text(event.context.get("roomNumber")),
            "property_id": event.pms_property_id,
            "reservation_id": event.object_id,
        },
    )


@workflow.defn
class WelcomeEmail:
    """Sends the guest the `welcome` email on RESERVATION_CHECKED_IN.

    Recipient: ``context.guestEmail`` or ``context.primaryGuest.email``; without one
    the reaction ends as skipped. The send follows the integration failure policy
    (retried on outages and rate limits, failed at once on a rejection). Nothing
    to compensate: it is a single step.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        return await send_guest_email(
            welcome_request(event, key=workflow.info().workflow_id),
            NO_RECIPIENT,
        )
