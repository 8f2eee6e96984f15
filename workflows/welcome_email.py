"""Welcome email when a guest checks in."""

from __future__ import annotations

from temporalio import workflow

from core.events import LikeMagicEvent
from core.guest import Guest
from workflows.common import send_guest_email, text
from workflows.guest import find_guest
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailRequest


def welcome_request(event: LikeMagicEvent, guest: Guest, key: str) -> EmailRequest:
    """The welcome email of a check-in to ``guest``."""
    return EmailRequest(
        key=key,
        kind="welcome",
        to=guest.email,
        language=guest.language,
        data={
            "guest_name": guest.name,
            "room_number": text(event.context.get("roomNumber")),
            "property_id": event.pms_property_id,
            "reservation_id": event.object_id,
        },
    )


@workflow.defn
class WelcomeEmail:
    """Sends the guest the `welcome` email on RESERVATION_CHECKED_IN, in the guest's
    language.

    The guest: the event's context if it names one, else the reservation's journey
    (which holds the guest from its RESERVATION_CREATED), else the guest's LIKE
    MAGIC profile (``userProfileId``); with none of them the reaction ends as
    skipped, naming what was tried. The outcome names the source that served.
    The lookups and the send follow the integration failure policy. Nothing to
    compensate: the only change to the world is the email.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        found = await find_guest(event, event.object_id)
        if found.guest is None:
            return ReactionResult.skipped(found.why_not("recipient"))
        request = welcome_request(event, found.guest, key=workflow.info().workflow_id)
        return await send_guest_email(request, found.served_by())
