"""The one list of reactions: the router reads it, the worker and tests register from it.

Adding a reaction is one module in ``workflows/`` and one line in ``REACTIONS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from activities.email import EmailActivities
from core.events import Topic
from core.settings import Settings
from workflows.reaction import Reaction
from workflows.welcome_email import WelcomeEmail

REACTIONS: list[Reaction] = [
    Reaction(
        "welcome-email",
        WelcomeEmail,
        topics=frozenset({Topic.RESERVATION_CHECKED_IN}),
        activities=(EmailActivities,),
    ),
]


def reactions_for(topic: str) -> list[Reaction]:
    """The reactions to a topic, in registry order."""
    return [r for r in REACTIONS if topic in r.topics]


def workflow_classes() -> list[type]:
    """Every workflow a worker must run: the router and each reaction."""
    from workflows.router import EventRouter

    classes: list[type] = [EventRouter]
    for reaction in REACTIONS:
        if reaction.workflow not in classes:
            classes.append(reaction.workflow)
    return classes


def build_activities(settings: Settings) -> list[Callable[..., Any]]:
    """Build each activity class the reactions need, once, and list its activities."""
    built: list[Callable[[Settings], Any]] = []
    methods: list[Callable[..., Any]] = []
    for reaction in REACTIONS:
        for factory in reaction.activities:
            if factory not in built:
                built.append(factory)
                methods.extend(factory(settings).activities())
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
