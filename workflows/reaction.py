"""What every reaction shares: its result, its outcome in the router, its registry entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client

from activities.config import ReactorConfig, integration_variable
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
    # Empty when the reaction was skipped without starting (switched off, not configured).
    workflow_id: str = ""
    status: Literal["done", "skipped", "failed"]
    detail: str = ""
    # For a failed reaction: what became of the operations alert.
    alert: str | None = None


class RouterResult(BaseModel):
    event_id: str
    topic: str
    reactions: list[ReactionOutcome]


class PlannedReaction(BaseModel):
    """One reaction the router will start (by workflow type name) or list as skipped."""

    reaction: str
    workflow_type: str
    # Why the reaction does not start (switched off, not configured); None: it starts.
    skipped: str | None = None
    # The activity that does the reaction's work in one call (hands the event to a
    # long-running workflow, sends the welcome email), which the router runs itself
    # instead of starting the reaction's workflow for it; the workflow still runs when
    # that fails. None (and in plans recorded before it existed): the workflow runs.
    delivery: str | None = None


class RoutePlan(BaseModel):
    """The router's choice of reactions for one event, in registry order, as recorded
    in its history: a deploy that changes the registry does not change it."""

    reactions: list[PlannedReaction]


# The topics of a reaction that reacts to every event.
ALL_TOPICS = frozenset({"*"})


@dataclass(frozen=True)
class Reaction:
    """A registry entry: which workflow reacts to which topics, with which activities.

    ``activities`` are classes built once at worker start as ``cls(settings, client)``;
    each lists its activity methods through ``activities()``. ``requires`` names
    integrations (see ``activities.config``) of which at least one must be
    configured, else the router skips the reaction with the reason. ``applies``
    narrows the topics by configuration; where it says no, the reaction is not
    started and not listed. ``workflows`` are further workflows it starts.
    """

    name: str
    workflow: type
    topics: frozenset[str]
    activities: tuple[Callable[[Settings, Client], Any], ...] = field(default=())
    requires: tuple[str, ...] = ()
    applies: Callable[[ReactorConfig, str], bool] | None = None
    # Long-running workflows the reaction starts or signals (registered on the worker too).
    workflows: tuple[type, ...] = ()
    # For a reaction whose work fits one activity (a delivery to a long-running workflow,
    # the welcome email): that activity's name for a topic (None: the workflow runs),
    # which the router runs itself.
    delivery: Callable[[str], str | None] | None = None

    def reacts_to(self, topic: str) -> bool:
        return self.topics == ALL_TOPICS or topic in self.topics

    @property
    def workflow_type(self) -> str:
        """The workflow type name the router starts."""
        return workflow_type(self.workflow)


def workflow_type(workflow_class: type) -> str:
    """A workflow class's type name (``@workflow.defn(name=...)``, else the class name)."""
    return str(workflow._Definition.must_from_class(workflow_class).name)


def skip_reason(reaction: Reaction, config: ReactorConfig) -> str | None:
    """Why a reaction does not start for this worker's configuration, if it does not."""
    if reaction.name in config.disabled_reactions:
        return "switched off by REACTOR_DISABLED_REACTIONS"
    if reaction.requires and not any(config.integrations.get(i) for i in reaction.requires):
        needs = " or ".join(integration_variable(i) for i in reaction.requires)
        return f"not configured: set {needs}"
    return None
