"""Finding a reaction's guest: the event itself, then the reservation's journey, then
the guest's LIKE MAGIC profile.

The platform's events are thin: only RESERVATION_CREATED names the guest. The
reservation's ``GuestJourney`` applies every RESERVATION_* event and so holds the
guest from its RESERVATION_CREATED: it is the one source of truth for a
reservation's guest, and reactions ask it (its ``guest`` query, through an
activity). What neither the event nor the journey knows is read from the Open API
(``GET /profiles/<userProfileId>``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from temporalio import workflow

from core.events import LikeMagicEvent
from core.guest import Guest, guest_in_context
from workflows.common import INTEGRATION_CALL

with workflow.unsafe.imports_passed_through():
    from activities.likemagic import LikeMagicActivities, ProfileLookup
    from activities.temporal import TemporalActivities


@dataclass
class FoundGuest:
    """The guest a lookup found (``guest`` is None when no source served), which
    source served, and what each source tried answered."""

    guest: Guest | None
    source: str = ""
    tried: list[str] = field(default_factory=list)

    def served_by(self) -> str:
        """For a reaction's outcome: "guest from <source>"."""
        return f"guest from {self.source}" if self.source else ""

    def why_not(self, wanted: str) -> str:
        """A skip reason naming every source tried."""
        return f"no {wanted}: tried " + "; ".join(self.tried)


class GuestSources(Protocol):
    """How a lookup asks the journey and the profile: as activities from a reaction's
    workflow (``AS_ACTIVITIES``), or directly from an activity the router runs."""

    async def journey_guest(self, reservation_id: str) -> Guest | None: ...

    async def likemagic_profile(self, profile_id: str) -> ProfileLookup: ...


class _AsActivities:
    """Each source an activity of the calling workflow, with the integration policy."""

    async def journey_guest(self, reservation_id: str) -> Guest | None:
        return await workflow.execute_activity_method(
            TemporalActivities.journey_guest, reservation_id, **INTEGRATION_CALL
        )

    async def likemagic_profile(self, profile_id: str) -> ProfileLookup:
        return await workflow.execute_activity_method(
            LikeMagicActivities.likemagic_profile, profile_id, **INTEGRATION_CALL
        )


AS_ACTIVITIES: GuestSources = _AsActivities()


@dataclass
class CalledDirectly:
    """The sources called from inside an activity (the worker's own instances)."""

    temporal: TemporalActivities
    likemagic: LikeMagicActivities

    async def journey_guest(self, reservation_id: str) -> Guest | None:
        return await self.temporal.journey_guest(reservation_id)

    async def likemagic_profile(self, profile_id: str) -> ProfileLookup:
        return await self.likemagic.likemagic_profile(profile_id)


def has_email(guest: Guest) -> bool:
    return guest.email is not None and "@" in guest.email


def has_name(guest: Guest) -> bool:
    return guest.name is not None


async def find_guest(
    event: LikeMagicEvent,
    reservation_id: str | None,
    enough: Callable[[Guest], bool] = has_email,
    sources: GuestSources = AS_ACTIVITIES,
) -> FoundGuest:
    """The first source whose guest is ``enough``, in the order event, journey,
    profile; what earlier sources knew fills the gaps of the one that served.
    ``sources``: how the journey and the profile are asked (see ``GuestSources``)."""
    known = guest_in_context(event.context)
    found = FoundGuest(guest=None)
    if enough(known):
        found.guest, found.source = known, "the event"
        return found
    found.tried.append("the event (no guest in its context)")

    if reservation_id:
        journey = await sources.journey_guest(reservation_id)
        if journey is not None and enough(journey):
            found.guest, found.source = known.merged(journey), "the reservation's journey"
            return found
        # No journey yet, or one that has not heard of the guest (a check-in delivered
        # to it at the same moment can have just started it): the same answer.
        found.tried.append(f"the reservation's journey (it knows no guest of {reservation_id})")
        known = known.merged(journey)
    else:
        found.tried.append("the reservation's journey (the event names no reservation)")

    if known.profile_id is None:
        found.tried.append("the LIKE MAGIC profile (no userProfileId in the event or journey)")
        return found
    lookup = await sources.likemagic_profile(known.profile_id)
    if lookup.guest is not None and enough(lookup.guest):
        found.guest = known.merged(lookup.guest)
        found.source = f"the LIKE MAGIC profile {known.profile_id}"
        return found
    found.tried.append(f"the LIKE MAGIC profile ({lookup.detail or 'it has no such guest detail'})")
    return found
