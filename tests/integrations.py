"""Every outside system reactor talks to, as local fakes, and the settings that point at them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from tests.fakes import FakeService, PmsTasks, Reply, teams_card_problem

SUPPORT_ADDRESS = "support@hotel.example"


@dataclass
class Integrations:
    sendgrid: FakeService
    slack_ops: FakeService
    slack_support: FakeService
    crm: FakeService
    event_log: FakeService
    teams_ops: FakeService
    teams_support: FakeService
    # The PMS shares the CRM fake's server (PMS_API_URL=<crm>/pms): its task assignees.
    pms_tasks: PmsTasks

    def settings(self, *without: str) -> dict[str, Any]:
        """Settings that configure every integration, less those named in ``without``."""
        values = {
            "sendgrid": {"SENDGRID_API_KEY": "SG.test", "SENDGRID_HOST": self.sendgrid.url},
            "slack_ops": {"SLACK_WEBHOOK_URL": f"{self.slack_ops.url}/services/ops"},
            "slack_support": {
                "SLACK_SUPPORT_WEBHOOK_URL": f"{self.slack_support.url}/services/support"
            },
            "support_email": {"SUPPORT_EMAIL": SUPPORT_ADDRESS},
            "crm": {"CRM_API_URL": f"{self.crm.url}/api", "CRM_API_TOKEN": "crm-token"},
            "event_log": {"EVENT_LOG_URL": f"{self.event_log.url}/events", "EVENT_LOG_TOKEN": "lt"},
        }
        # Teams only where asked for (``teams()``): the other tests count Slack alone.
        merged: dict[str, Any] = {}
        for name, entries in values.items():
            if name not in without:
                merged.update(entries)
        return merged

    def all(self) -> dict[str, FakeService]:
        return {
            "sendgrid": self.sendgrid,
            "slack_ops": self.slack_ops,
            "slack_support": self.slack_support,
            "crm": self.crm,
            "event_log": self.event_log,
            "teams_ops": self.teams_ops,
            "teams_support": self.teams_support,
        }

    def teams(self) -> dict[str, Any]:
        """Settings that point the Teams channels at their fakes."""
        return {
            "TEAMS_WEBHOOK_URL": f"{self.teams_ops.url}/workflows/ops?sig=secret-ops",
            "TEAMS_SUPPORT_WEBHOOK_URL": f"{self.teams_support.url}/workflows/support",
        }


@contextmanager
def integrations() -> Iterator[Integrations]:
    with ExitStack() as stack:
        slack_ok = Reply(200, "ok")
        crm = stack.enter_context(FakeService(Reply(200, {"updated": True})))
        crm.respond = pms_tasks = PmsTasks()
        yield Integrations(
            sendgrid=stack.enter_context(FakeService()),
            slack_ops=stack.enter_context(FakeService(slack_ok)),
            slack_support=stack.enter_context(FakeService(slack_ok)),
            crm=crm,
            event_log=stack.enter_context(FakeService(Reply(202, {"stored": True}))),
            teams_ops=stack.enter_context(FakeService(Reply(202), teams_card_problem)),
            teams_support=stack.enter_context(FakeService(Reply(202), teams_card_problem)),
            pms_tasks=pms_tasks,
        )
