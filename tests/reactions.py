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


@workflow.defn
class HeldReaction:
    """A reaction still running while a deploy happens: waits for its ``release`` signal."""

    def __init__(self) -> None:
        self._released = False

    @workflow.signal
    def release(self) -> None:
        self._released = True

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        await workflow.wait_condition(lambda: self._released)
        return ReactionResult.done("released")


@workflow.defn
class LateReaction:
    """A reaction a deploy adds."""

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        return ReactionResult.done("late")


HELD = Reaction("held", HeldReaction, topics=frozenset({Topic.RESERVATION_CHECKED_IN}))
LATE = Reaction("late", LateReaction, topics=frozenset({Topic.RESERVATION_CHECKED_IN}))


@workflow.defn(name="DeployCheck")
class DeployCheckBefore:
    """A long-running workflow as deployed: it waits on a timer."""

    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(3600)


@workflow.defn(name="DeployCheck")
class DeployCheckAfter:
    """The same workflow type changed without versioning: no timer any more."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)
