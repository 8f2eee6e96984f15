"""Welcome email when a guest checks in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from temporalio import activity, workflow

from core.events import LikeMagicEvent
from core.guest import Guest
from workflows.common import send_guest_email, text
from workflows.guest import CalledDirectly, find_guest
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities, EmailRequest
    from activities.likemagic import LikeMagicActivities
    from activities.policy import Delivery
    from activities.temporal import TemporalActivities


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


def welcome_delivery(topic: str) -> str:
    """The activity that sends a check-in's welcome email: the router runs it itself
    while it succeeds (see ``EventRouter``), ``WelcomeEmail`` when it fails."""
    return "send_welcome_email"


class WelcomeEmailInRouter:
    """``WelcomeEmail`` as one activity the router runs (``<event id>/welcome-email``):
    the same lookup (event, journey, profile) and the same email with the same key, so
    that the reaction's workflow, run when this fails, sends it at most once (the
    outbox file and the effects ledger are keyed by it). Built from the worker's own
    email, Temporal and LIKE MAGIC activities."""

    # Its slow part is SendGrid: it counts against the emails' share of the worker's
    # activity slots (WORKER_MAX_ACTIVITIES_PER_PROVIDER).
    provider = EmailActivities.__name__

    def __init__(
        self, temporal: TemporalActivities, likemagic: LikeMagicActivities, email: EmailActivities
    ) -> None:
        self._sources = CalledDirectly(temporal, likemagic)
        self._email = email

    @classmethod
    def from_built(cls, built: Mapping[Callable[..., Any], Any]) -> WelcomeEmailInRouter:
        return cls(built[TemporalActivities], built[LikeMagicActivities], built[EmailActivities])

    def activities(self) -> list[Callable[..., Any]]:
        return [self.send_welcome_email]

    @activity.defn(name="send_welcome_email")
    async def send_welcome_email(self, event: LikeMagicEvent) -> Delivery:
        """Find the guest and send the welcome email; skipped, naming what was tried,
        without a guest. The outcome names the source that served (``served_by``)."""
        found = await find_guest(event, event.object_id, sources=self._sources)
        if found.guest is None:
            return Delivery.skipped(found.why_not("recipient"))
        request = welcome_request(event, found.guest, key=activity.info().activity_id)
        delivery = await self._email.send_email(request)
        delivery.served_by = found.served_by()
        return delivery


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
