"""The one list of reactions: the router reads it, the worker and tests register from it.

Adding a reaction is one module in ``workflows/`` and one entry in ``REACTIONS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from temporalio import activity
from temporalio.client import Client

from activities.config import ConfigActivities, ReactorConfig
from activities.crm import CrmActivities
from activities.email import EmailActivities
from activities.forward import ForwardActivities
from activities.likemagic import LikeMagicActivities
from activities.pms import PmsActivities
from activities.roster import RosterActivities
from activities.slack import SlackActivities
from activities.targets import FORWARD_PREFIX, ForwardTarget
from activities.temporal import TemporalActivities
from core.events import Topic
from core.logging import quiet_body_loggers
from core.settings import Settings
from storage.effects import EffectsLedger
from workflows.activity_log import ActivityLog
from workflows.booking_confirmation import BookingConfirmation
from workflows.crm_sync import CrmSync
from workflows.forward import Forward
from workflows.guest_journey import GuestJourney, JourneyDelivery
from workflows.housekeeping import HousekeepingAssignment
from workflows.housekeeping_delivery import HousekeepingDelivery, housekeeping_delivery
from workflows.profile_refresh import ProfileRefresh
from workflows.reaction import (
    ALL_TOPICS,
    PlannedReaction,
    Reaction,
    RoutePlan,
    skip_reason,
    workflow_type,
)
from workflows.support_alert import SupportAlert
from workflows.team_notice import TeamNotice
from workflows.welcome_email import WelcomeEmail, WelcomeEmailInRouter, welcome_delivery


def _event_log_topics(config: ReactorConfig, topic: str) -> bool:
    return config.event_log_topics is None or topic in config.event_log_topics


# What a guest-facing reaction asks when its event does not name the guest: the
# reservation's journey (Temporal), then the guest's LIKE MAGIC profile.
GUEST_LOOKUPS: tuple[Callable[[Settings, Client], Any], ...] = (
    TemporalActivities,
    LikeMagicActivities,
)


def journey_delivery(topic: str) -> str:
    """The activity that hands a RESERVATION_* event to its journey: the router runs it
    itself while it succeeds (see ``EventRouter``), ``JourneyDelivery`` when it fails."""
    return "deliver_reservation_event"


REACTIONS: list[Reaction] = [
    Reaction(
        "booking-confirmation",
        BookingConfirmation,
        topics=frozenset({Topic.RESERVATION_CREATED}),
        activities=GUEST_LOOKUPS + (EmailActivities,),
    ),
    Reaction(
        "welcome-email",
        WelcomeEmail,
        topics=frozenset({Topic.RESERVATION_CHECKED_IN}),
        activities=GUEST_LOOKUPS + (EmailActivities,),
        delivery=welcome_delivery,
    ),
    Reaction(
        "team-notice",
        TeamNotice,
        topics=frozenset({Topic.TASK_COMPLETED}),
        activities=(SlackActivities, TemporalActivities),
        requires=("slack_operations", "teams_operations"),
    ),
    Reaction(
        "support-alert",
        SupportAlert,
        topics=frozenset({Topic.MESSAGE_RECEIVED}),
        activities=GUEST_LOOKUPS + (SlackActivities, EmailActivities),
        requires=("slack_support", "teams_support", "support_email"),
    ),
    Reaction(
        "crm-sync",
        CrmSync,
        topics=frozenset({Topic.PROFILE_UPDATED}),
        activities=(CrmActivities,),
        requires=("crm",),
    ),
    Reaction(
        "profile-refresh",
        ProfileRefresh,
        topics=frozenset({Topic.PROFILE_UPDATED, Topic.PROFILE_LANGUAGE_UPDATED}),
        activities=(TemporalActivities,),
    ),
    Reaction(
        "housekeeping",
        HousekeepingDelivery,
        topics=frozenset(
            {
                Topic.TASK_CREATED,
                Topic.TASK_UPDATED,
                Topic.TASK_COMPLETED,
                Topic.RESERVATION_CANCELLED,
            }
        ),
        activities=(
            TemporalActivities,
            RosterActivities,
            PmsActivities,
            SlackActivities,
            EmailActivities,
        ),
        workflows=(HousekeepingAssignment,),
        delivery=housekeeping_delivery,
    ),
    Reaction(
        "guest-journey",
        JourneyDelivery,
        topics=frozenset(t for t in Topic if t.startswith("RESERVATION_")),
        activities=GUEST_LOOKUPS + (EmailActivities, PmsActivities),
        workflows=(GuestJourney,),
        delivery=journey_delivery,
    ),
    Reaction(
        "activity-log",
        ActivityLog,
        topics=ALL_TOPICS,
        activities=(ForwardActivities,),
        requires=("event_log",),
        applies=_event_log_topics,
    ),
]


def reactions_for(topic: str) -> list[Reaction]:
    """The reactions to a topic, in registry order."""
    return [r for r in REACTIONS if r.reacts_to(topic)]


def plan_for(topic: str, config: ReactorConfig, deliveries: bool = True) -> RoutePlan:
    """Which reactions to a topic start and which are skipped (with the reason), for
    this configuration. Reactions whose ``applies`` says no are left out. After the
    registry's come the forward targets whose topics match, in the file's order: each
    a ``Forward`` execution named ``forward-<target>``. ``deliveries=False``: every
    reaction runs as its workflow (the plan of routers started before deliveries)."""
    planned = [
        PlannedReaction(
            reaction=reaction.name,
            workflow_type=reaction.workflow_type,
            skipped=skip_reason(reaction, config),
            delivery=reaction.delivery(topic) if reaction.delivery and deliveries else None,
        )
        for reaction in reactions_for(topic)
        if reaction.applies is None or reaction.applies(config, topic)
    ]
    for name, topics in config.forward_targets.items():
        reaction = FORWARD_PREFIX + name
        if ForwardTarget.matches(topics, topic):
            off = reaction in config.disabled_reactions
            planned.append(
                PlannedReaction(
                    reaction=reaction,
                    workflow_type=workflow_type(Forward),
                    skipped="switched off by REACTOR_DISABLED_REACTIONS" if off else None,
                )
            )
    return RoutePlan(reactions=planned)


class RoutingActivities:
    """The router's plan, computed from the live registry outside workflow code.

    It lives beside the registry because activities/ does not import workflows/.
    As a local activity its answer is recorded in the router's history, so a
    router replaying after a deploy that changed the registry keeps its plan.
    """

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._config = ConfigActivities(settings, client)

    def activities(self) -> list[Callable[..., Any]]:
        return [self.route_plan]

    @activity.defn(name="route_plan")
    async def route_plan(self, topic: str) -> RoutePlan:
        """The reactions to start for the topic, and the skipped ones with the reason."""
        return plan_for(topic, await self._config.reactor_config())


# What the router itself calls: its plan, the configuration snapshot of routers
# started before plans were recorded, and failure alerts.
ROUTER_ACTIVITIES: tuple[Callable[[Settings, Client], Any], ...] = (
    RoutingActivities,
    ConfigActivities,
    SlackActivities,
)


# Deliveries the router runs that are built from the other activities (``from_built``):
# they call the worker's own instances of them.
BUILT_FROM_OTHERS: tuple[Any, ...] = (WelcomeEmailInRouter,)


# Their providers cannot tell a retry from a new request: their sends go through the
# effects ledger (storage/effects.py).
WITHOUT_IDEMPOTENCY_KEYS: tuple[Callable[..., Any], ...] = (EmailActivities, SlackActivities)


def workflow_classes() -> list[type]:
    """Every workflow a worker must run: the router and each reaction."""
    from workflows.router import EventRouter

    classes: list[type] = [EventRouter, Forward]
    for reaction in REACTIONS:
        for workflow_class in (reaction.workflow, *reaction.workflows):
            if workflow_class not in classes:
                classes.append(workflow_class)
    return classes


def build_activities(
    settings: Settings, client: Client, ledger: EffectsLedger | None = None
) -> list[Callable[..., Any]]:
    """Build each activity class, once, and list its activities. The providers without
    idempotency keys share one effects ledger (``ledger``, else one built here)."""
    # Their HTTP clients would log guest data at DEBUG (a worker in a test, or embedded).
    quiet_body_loggers()
    ledger = ledger or EffectsLedger(settings.intake_database_url)
    factories: list[Callable[..., Any]] = [*ROUTER_ACTIVITIES, ForwardActivities]
    for reaction in REACTIONS:
        factories += [f for f in reaction.activities if f not in factories]
    methods: list[Callable[..., Any]] = []
    built: dict[Callable[..., Any], Any] = {}
    for factory in factories:
        if factory in WITHOUT_IDEMPOTENCY_KEYS:
            built[factory] = factory(settings, client, ledger)
        else:
            built[factory] = factory(settings, client)
        methods.extend(built[factory].activities())
    for composite in BUILT_FROM_OTHERS:
        methods.extend(composite.from_built(built).activities())
    return methods


@contextmanager
def registered(*reactions: Reaction) -> Iterator[None]:
    """Add reactions for the duration of a block (tests, experiments)."""
    REACTIONS.extend(reactions)
    try:
        yield
    finally:
        for reaction in reactions:
            REACTIONS.remove(reaction)
