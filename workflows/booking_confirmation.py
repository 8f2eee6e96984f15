"""Booking confirmation when a reservation is created."""

from __future__ import annotations

from temporalio import workflow

from core.events import LikeMagicEvent
from core.guest import Guest
from workflows.common import instant, number, send_guest_email, text
from workflows.guest import find_guest
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailRequest


def confirmation_request(event: LikeMagicEvent, guest: Guest, key: str) -> EmailRequest:
    # As sent (a date alone, or an instant): the email activity shows them as the
    # property's local dates and counts the nights between those.
    arrival, departure = (
        text(event.context.get(key)) if instant(event.context.get(key)) else None
        for key in ("arrival", "departure")
    )
    return EmailRequest(
        key=key,
        kind="booking_confirmation",
        to=guest.email,
        language=guest.language,
        data={
            "guest_name": guest.name,
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
    dates, nights, guests, property, in the guest's language.

    The guest: the event's ``primaryGuest``, else the reservation's journey, else
    the LIKE MAGIC profile; with none it is skipped, naming what was tried. The
    lookups and the send follow the integration failure policy. Nothing to
    compensate.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        found = await find_guest(event, event.object_id)
        if found.guest is None:
            return ReactionResult.skipped(found.why_not("recipient"))
        request = confirmation_request(event, found.guest, key=workflow.info().workflow_id)
        return await send_guest_email(request, found.served_by())
