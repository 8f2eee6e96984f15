"""What every reaction shares: its result, its outcome in the router, its registry entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from core.settings import Settings


class ReactionResult(BaseModel):
    """What a reaction workflow returns. A reaction that fails raises instead."""

    status: Literal["done", "skipped"]
    detail: str = ""

    @classmethod
    def done(cls, detail: str = "") -> ReactionResult:
        return cls(status="done", detail=detail)

    @classmethod
    def skipped(cls, reason: str) -> ReactionResult:
        return cls(status="skipped", detail=reason)


class ReactionOutcome(BaseModel):
    reaction: str
    workflow_id: str
    status: Literal["done", "skipped", "failed"]
    detail: str = ""


class RouterResult(BaseModel):
    event_id: str
    topic: str
    reactions: list[ReactionOutcome]


@dataclass(frozen=True)
class Reaction:
    """A registry entry: which workflow reacts to which topics, with which activities.

    ``activities`` are classes built once at worker start as ``cls(settings)``; each
    lists its activity methods through ``activities()``.
    """

    name: str
    workflow: type
    topics: frozenset[str]
    activities: tuple[Callable[[Settings], Any], ...] = field(default=())
