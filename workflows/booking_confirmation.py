"""Booking confirmation when a reservation is created."""

from __future__ import annotations

from temporalio import workflow

from core.events import LikeMagicEvent
from workflows.common import guest_name, instant, number, recipient, send_guest_email, text
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailRequest


NO_RECIPIENT = (
    "no recipient: the event has neither context.primaryGuest.email nor context.guestEmail"
)


def confirmation_request(event: LikeMagicEvent, key: str) -> EmailRequest | None:
    to = recipient(event.context)
    if to is None:
        return None
    # As sent (a date alone, or an instant): the email activity shows them as the
    # property's local dates and counts the nights between those.
    arrival, departure = (
        text(event.context.get(key)) if instant(event.context.get(key)) else None
        for key in ("arrival", "departure")
    )
    return EmailRequest(
        key=key,
        kind="booking_confirmation",
        to=to,
        data={
            "guest_name": guest_name(event.context),
            "reservation_id": event.object_id,
            "property_id": event.pms_property_id,
            "arrival": arrival,
            "departure": departure,
            "adults": number(event.context.get("adults")),
            "children": number(event.context.get("children")),
        },
    )


@workflow.defn
class BookingConfirmation:
    """Emails the primary guest a `booking_confirmation` on RESERVATION_CREATED:
    dates, nights, guests, property.

    Without a recipient (``primaryGuest.email`` or ``guestEmail``) it is skipped.
    The send follows the integration failure policy. Nothing to compensate.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        return await send_guest_email(
            confirmation_request(event, key=workflow.info().workflow_id),
            NO_RECIPIENT,
        )
