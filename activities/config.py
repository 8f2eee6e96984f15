"""The worker's configuration, as the router needs it to decide which reactions run.

Workflows must not read settings (a replay on another worker could see other
values). The router's plan (``workflows.registry.RoutingActivities``) is computed
from this configuration in a local activity, so it is recorded in the event's
history; routers started before plans were recorded ask ``reactor_config`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from activities.targets import read_targets
from core.settings import Settings, reaction_url_variable

# Integration name -> the variable that configures it (for skip reasons).
INTEGRATION_VARIABLES = {
    "email": "SENDGRID_API_KEY or the outbox",
    "slack_operations": "SLACK_WEBHOOK_URL",
    "slack_support": "SLACK_SUPPORT_WEBHOOK_URL or SLACK_WEBHOOK_URL",
    "teams_operations": "TEAMS_WEBHOOK_URL",
    "teams_support": "TEAMS_SUPPORT_WEBHOOK_URL or TEAMS_WEBHOOK_URL",
    "support_email": "SUPPORT_EMAIL",
    "crm": "CRM_API_URL",
    "event_log": "EVENT_LOG_URL",
}
# The endpoint of a reaction written with --http: "endpoint:condition-alert".
ENDPOINT = "endpoint:"


def integration_variable(integration: str) -> str:
    """The variable (or variables) that configure an integration, for skip reasons."""
    if integration.startswith(ENDPOINT):
        return reaction_url_variable(integration.removeprefix(ENDPOINT))
    return INTEGRATION_VARIABLES.get(integration, integration)


class ReactorConfig(BaseModel):
    disabled_reactions: list[str] = []
    integrations: dict[str, bool] = {}
    # None: the activity log forwards every topic.
    event_log_topics: list[str] | None = None
    # Forward target name -> its topic patterns (FORWARD_TARGETS; secrets stay out).
    forward_targets: dict[str, list[str]] = {}


class ConfigActivities:
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._forward_targets = {t.name: t.topics for t in read_targets(settings.forward_targets)}

    def activities(self) -> list[Callable[..., Any]]:
        return [self.reactor_config]

    @activity.defn(name="reactor_config")
    async def reactor_config(self) -> ReactorConfig:
        """Which reactions are switched off and which integrations are configured."""
        s = self._settings
        return ReactorConfig(
            disabled_reactions=s.disabled_reaction_names(),
            integrations={
                "email": True,  # without SendGrid, the outbox
                "slack_operations": s.slack_webhook_url is not None,
                "slack_support": (s.slack_support_webhook_url or s.slack_webhook_url) is not None,
                "teams_operations": s.teams_webhook_url is not None,
                "teams_support": (s.teams_support_webhook_url or s.teams_webhook_url) is not None,
                "support_email": s.support_email is not None,
                "crm": s.crm_api_url is not None,
                "event_log": s.event_log_url is not None,
                # REACTION_URL_CONDITION_ALERT=... configures "endpoint:condition-alert".
                **{ENDPOINT + key.lower().replace("_", "-"): True for key in s.reaction_urls},
            },
            event_log_topics=s.event_log_topic_list(),
            forward_targets=self._forward_targets,
        )
