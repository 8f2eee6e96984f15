"""Reactions that exist only in tests (kept apart: the workflow sandbox imports this module)."""

from __future__ import annotations

from temporalio import workflow

from core.events import LikeMagicEvent, Topic
from workflows.reaction import Reaction, ReactionResult


@workflow.defn
class NoteTheRoom:
    """A second reaction to check-ins: completes without side effects."""

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        return ReactionResult.done(f"room {event.context.get('roomNumber', '?')}")


NOTE_THE_ROOM = Reaction(
    "note-the-room", NoteTheRoom, topics=frozenset({Topic.RESERVATION_CHECKED_IN})
)
