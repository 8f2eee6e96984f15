"""The testing kit: a reaction's test in a dozen lines.

    async def test_my_reaction(skipping_env, tmp_path):
        sent = event("RESERVATION_CONDITION_UPDATED", context={"reservationCondition": "OK"})
        async with reactor_kit(skipping_env, tmp_path) as kit:
            outcome = await kit.react(sent, "my-reaction")
        assert outcome.status == "done"
        assert kit.slack() == ["..."]

``reactor_kit`` runs the whole reactor (the real webhook, router, worker and registry) on
the given Temporal environment (``skipping_env``: the time-skipping server, ``temporal_env``:
the dev server) with every integration pointed at a local fake that records each request,
every reaction's own endpoint (``REACTION_URL_<REACTION>``) included.
``event`` builds an event on the platform's real thin shapes, from examples/events/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.examples import sample_events
from core.settings import reaction_url_variable
from tests.fakes import FakeService, Recorded, Reply
from tests.helpers import Reactor, by_name, running_reactor, unique
from tests.integrations import Integrations, integrations
from workflows.reaction import ReactionOutcome, RouterResult
from workflows.registry import REACTIONS


def event(topic: str, **changes: Any) -> dict[str, Any]:
    """An event of ``topic`` with a fresh id: the sample of that topic, else a sample about
    the same kind of object with the topic set and an empty context (the platform does not
    document it). ``changes`` replace top-level fields (``context=...``, ``objectId=...``)."""
    samples = list(sample_events().values())
    chosen = next((s for s in samples if s["topic"] == topic), None)
    if chosen is None:
        kind = topic.split("_", 1)[0]
        chosen = next((s for s in samples if s.get("objectType") == kind), samples[0])
        chosen = {**chosen, "topic": topic, "context": {}}
    return unique(chosen, **changes)


@dataclass
class Kit:
    reactor: Reactor
    fakes: Integrations
    # Answers every reaction's endpoint (REACTION_URL_<REACTION> is <its url>/<reaction>).
    endpoints: FakeService

    async def react(self, sent: dict[str, Any], reaction: str) -> ReactionOutcome:
        """POST the event through the webhook; the reaction's outcome once its router ends."""
        return by_name(await self.route(sent))[reaction]

    async def route(self, sent: dict[str, Any]) -> RouterResult:
        answer = await self.reactor.post(sent)
        assert answer.status_code == 200, answer.text
        return await self.reactor.routed(sent["id"])

    def slack(self, channel: str = "operations") -> list[str]:
        """The texts posted to a Slack channel (operations or support), in order."""
        fake = self.fakes.slack_ops if channel == "operations" else self.fakes.slack_support
        return [r.json()["text"] for r in fake.succeeded()]

    def calls(self, reaction: str) -> list[Recorded]:
        """The requests a reaction made to its endpoint (``--http``), in order; each has
        ``.json()``, ``.header(name)`` and ``.method``."""
        return [r for r in self.endpoints.succeeded() if r.path == f"/{reaction}"]

    def emails(self) -> list[dict[str, Any]]:
        """The emails sent through SendGrid: {"to", "subject", "text", "key"} each; the key
        is the sending reaction's workflow id (``outcome.workflow_id``)."""
        sent = []
        for request in self.fakes.sendgrid.succeeded():
            body = request.json()
            text = next(
                (c["value"] for c in body.get("content", []) if c["type"] == "text/plain"), ""
            )
            sent.append(
                {
                    "to": body["personalizations"][0]["to"][0]["email"],
                    "subject": body.get("subject"),
                    "text": text,
                    "key": body.get("custom_args", {}).get("reactor_key"),
                }
            )
        return sent


@asynccontextmanager
async def reactor_kit(env: Any, tmp_path: Path, **settings: Any) -> AsyncIterator[Kit]:
    """A running reactor on ``env`` with recording fakes for SendGrid, Slack, Teams, the
    CRM, the PMS, the event log and the reactions' endpoints; ``settings`` override
    (``SLACK_WEBHOOK_URL=None``...)."""
    with integrations() as fakes, FakeService(Reply(200, {"received": True})) as endpoints:
        urls = {reaction_url_variable(r.name): f"{endpoints.url}/{r.name}" for r in REACTIONS}
        values = {**fakes.settings(), **urls, **settings}
        async with running_reactor(env.client, tmp_path, **values) as reactor:
            yield Kit(reactor, fakes, endpoints)
