"""All of reactor's configuration, read once from the environment (and a `.env` file)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.codec import DEV_KEY_FILE, Key, parse_keys, read_key_file

SENDGRID_TEMPLATE_PREFIX = "SENDGRID_TEMPLATE_"
# REACTION_URL_<REACTION>: the endpoint a reaction written with `reactor new reaction --http`
# calls (REACTION_URL_CONDITION_ALERT for condition-alert).
REACTION_URL_PREFIX = "REACTION_URL_"
# Families of variables whose names are open-ended: prefix -> the mapping they fill.
VARIABLE_FAMILIES = {
    SENDGRID_TEMPLATE_PREFIX: "sendgrid_templates",
    REACTION_URL_PREFIX: "reaction_urls",
}

# A time of day as settings write it: 00:00 to 23:59.
TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):[0-5]\d")

# Secrets a developer might paste from a tutorial; refused outside development.
WEAK_SECRETS = frozenset({"changeme", "change-me", "secret", "test", "password", "example"})


class Settings(BaseSettings):
    """Every variable reactor reads. The README's configuration table mirrors this class."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        # VAR= (as compose files pass unset optional variables) means "unset".
        env_ignore_empty=True,
    )

    environment: Literal["development", "production"] = Field(
        "production", validation_alias="REACTOR_ENV"
    )

    # Guest data in Temporal: AES-256-GCM keys `id:base64` (the first encrypts), and the
    # bearer token of the codec server (POST /codec/decode) that the Temporal UI uses.
    encryption_keys: SecretStr | None = Field(None, validation_alias="REACTOR_ENCRYPTION_KEYS")
    codec_token: SecretStr | None = Field(None, validation_alias="REACTOR_CODEC_TOKEN")

    # Webhook
    webhook_secret: SecretStr | None = Field(None, validation_alias="WEBHOOK_SECRET")
    webhook_max_body_bytes: int = Field(
        1024 * 1024, validation_alias="WEBHOOK_MAX_BODY_BYTES", gt=0
    )
    # The publisher gives up after 5 s; answer (even 503) well before that.
    webhook_ack_timeout_seconds: float = Field(
        3.5, validation_alias="WEBHOOK_ACK_TIMEOUT_SECONDS", gt=0, le=4.5
    )
    webhook_retry_after_seconds: int = Field(5, validation_alias="WEBHOOK_RETRY_AFTER_SECONDS")

    # Intake queue: where an event waits while Temporal is slow or down.
    intake_database_url: str = Field(
        "sqlite+aiosqlite:///var/intake.db", validation_alias="INTAKE_DATABASE_URL"
    )
    # How long the webhook waits for Temporal to start a router before it queues the event.
    intake_start_budget_seconds: float = Field(
        2.0, validation_alias="INTAKE_START_BUDGET_SECONDS", gt=0, le=4
    )
    # Operations are alerted once when the oldest queued event is older than this.
    intake_alert_after_seconds: float = Field(
        300.0, validation_alias="INTAKE_ALERT_AFTER_SECONDS", gt=0
    )
    # Routers the forwarder starts at once while it drains the queue.
    intake_forward_concurrency: int = Field(
        16, validation_alias="INTAKE_FORWARD_CONCURRENCY", ge=1, le=256
    )

    # Temporal (the standard TEMPORAL_* variables)
    temporal_address: str = Field("localhost:7233", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field("default", validation_alias="TEMPORAL_NAMESPACE")
    temporal_api_key: SecretStr | None = Field(None, validation_alias="TEMPORAL_API_KEY")
    temporal_tls: bool = Field(False, validation_alias="TEMPORAL_TLS")
    temporal_tls_client_cert_path: Path | None = Field(
        None, validation_alias="TEMPORAL_TLS_CLIENT_CERT_PATH"
    )
    temporal_tls_client_key_path: Path | None = Field(
        None, validation_alias="TEMPORAL_TLS_CLIENT_KEY_PATH"
    )
    temporal_ui_url: str = Field("http://localhost:8233", validation_alias="TEMPORAL_UI_URL")
    task_queue: str = Field("reactor", validation_alias="REACTOR_TASK_QUEUE")
    namespace_retention_days: int = Field(
        7, validation_alias="REACTOR_NAMESPACE_RETENTION_DAYS", ge=1
    )

    # Email
    sendgrid_api_key: SecretStr | None = Field(None, validation_alias="SENDGRID_API_KEY")
    sendgrid_host: str = Field("https://api.sendgrid.com", validation_alias="SENDGRID_HOST")
    # At most 100 s: an activity attempt (2 minutes) must outlive its request, or a
    # request that may still succeed would be sent again (activities/policy.py).
    sendgrid_timeout_seconds: float = Field(
        60.0, validation_alias="SENDGRID_TIMEOUT_SECONDS", gt=0, le=100
    )
    email_from: str = Field("reactor@example.com", validation_alias="EMAIL_FROM")
    email_outbox_dir: Path = Field(Path("var/outbox"), validation_alias="EMAIL_OUTBOX_DIR")

    email_templates_dir: Path | None = Field(None, validation_alias="EMAIL_TEMPLATES_DIR")
    # Every SENDGRID_TEMPLATE_<KIND>[_<LANG>] variable, by its name after the prefix
    # (e.g. "WELCOME_DE"): collected by _VariableFamilies, not read one by one.
    sendgrid_templates: dict[str, str] = Field(
        default_factory=dict, validation_alias=SENDGRID_TEMPLATE_PREFIX + "<KIND>[_<LANG>]"
    )
    support_email: str | None = Field(None, validation_alias="SUPPORT_EMAIL")
    property_names: dict[str, str] = Field(default_factory=dict, validation_alias="PROPERTY_NAMES")

    # Slack incoming webhooks (their URLs are secrets)
    slack_webhook_url: SecretStr | None = Field(None, validation_alias="SLACK_WEBHOOK_URL")
    slack_support_webhook_url: SecretStr | None = Field(
        None, validation_alias="SLACK_SUPPORT_WEBHOOK_URL"
    )

    # Microsoft Teams: Workflows / incoming webhooks per channel (their URLs are secrets)
    teams_webhook_url: SecretStr | None = Field(None, validation_alias="TEAMS_WEBHOOK_URL")
    teams_support_webhook_url: SecretStr | None = Field(
        None, validation_alias="TEAMS_SUPPORT_WEBHOOK_URL"
    )
    teams_supervisor_webhook_url: SecretStr | None = Field(
        None, validation_alias="TEAMS_SUPERVISOR_WEBHOOK_URL"
    )

    # Signed forwarding to third parties (a YAML file of targets; unset: none)
    forward_targets: Path | None = Field(None, validation_alias="FORWARD_TARGETS")
    # Failed attempts in a row after which a target's outage is told to operations (once).
    forward_alert_after_failures: int = Field(
        5, validation_alias="FORWARD_ALERT_AFTER_FAILURES", ge=1
    )

    # CRM and activity log
    crm_api_url: str | None = Field(None, validation_alias="CRM_API_URL")
    crm_api_token: SecretStr | None = Field(None, validation_alias="CRM_API_TOKEN")
    event_log_url: str | None = Field(None, validation_alias="EVENT_LOG_URL")
    event_log_token: SecretStr | None = Field(None, validation_alias="EVENT_LOG_TOKEN")
    event_log_topics: str = Field("*", validation_alias="EVENT_LOG_TOPICS")
    http_timeout_seconds: float = Field(60.0, validation_alias="HTTP_TIMEOUT_SECONDS", gt=0, le=100)
    # Every REACTION_URL_<REACTION> variable, by the reaction's name after the prefix
    # ("CONDITION_ALERT"): collected by _VariableFamilies, like the SendGrid templates.
    reaction_urls: dict[str, str] = Field(
        default_factory=dict, validation_alias=REACTION_URL_PREFIX + "<REACTION>"
    )

    # Housekeeping assignment
    housekeeping_task_types: str = Field(
        "DEPARTURE_CLEANING,STAYOVER_CLEANING,SERVICE_TASK",
        validation_alias="HOUSEKEEPING_TASK_TYPES",
    )
    housekeeping_roster: Path = Field(
        Path("examples/housekeeping-roster.yaml"), validation_alias="HOUSEKEEPING_ROSTER"
    )
    housekeeping_sla_minutes: dict[str, int] = Field(
        default_factory=lambda: {
            "DEPARTURE_CLEANING": 45,
            "STAYOVER_CLEANING": 30,
            "SERVICE_TASK": 20,
        },
        validation_alias="HOUSEKEEPING_SLA_MINUTES",
    )
    housekeeping_default_sla_minutes: int = Field(
        45, validation_alias="HOUSEKEEPING_DEFAULT_SLA_MINUTES", gt=0
    )
    housekeeping_max_reassignments: int = Field(
        2, validation_alias="HOUSEKEEPING_MAX_REASSIGNMENTS", ge=0
    )
    # Task types that do not wait for the next shift: they go to whoever is on call.
    housekeeping_urgent_types: str = Field("", validation_alias="HOUSEKEEPING_URGENT_TYPES")
    slack_supervisor_webhook_url: SecretStr | None = Field(
        None, validation_alias="SLACK_SUPERVISOR_WEBHOOK_URL"
    )
    pms_api_url: str | None = Field(None, validation_alias="PMS_API_URL")
    pms_api_token: SecretStr | None = Field(None, validation_alias="PMS_API_TOKEN")

    # LIKE MAGIC Open API (OAuth 2.0 client credentials of a service account)
    likemagic_api_url: str | None = Field(None, validation_alias="LIKEMAGIC_API_URL")
    likemagic_token_url: str | None = Field(None, validation_alias="LIKEMAGIC_TOKEN_URL")
    likemagic_client_id: str | None = Field(None, validation_alias="LIKEMAGIC_CLIENT_ID")
    likemagic_client_secret: SecretStr | None = Field(
        None, validation_alias="LIKEMAGIC_CLIENT_SECRET"
    )
    likemagic_scope: str | None = Field(None, validation_alias="LIKEMAGIC_SCOPE")
    # How the token endpoint receives the client credentials: form body or HTTP Basic.
    likemagic_client_auth: Literal["body", "basic"] = Field(
        "body", validation_alias="LIKEMAGIC_CLIENT_AUTH"
    )
    likemagic_rate_per_second: float = Field(
        7.0, validation_alias="LIKEMAGIC_RATE_PER_SECOND", gt=0
    )
    likemagic_burst: int = Field(7, validation_alias="LIKEMAGIC_BURST", ge=1)
    # A token is renewed this long before it expires (tokens live 300 s).
    likemagic_token_leeway_seconds: int = Field(
        30, validation_alias="LIKEMAGIC_TOKEN_LEEWAY_SECONDS", ge=0
    )

    # Guest journeys
    property_timezones: dict[str, str] = Field(
        default_factory=dict, validation_alias="PROPERTY_TIMEZONES"
    )
    # pmsPropertyId -> the language of guests whose own language is unknown.
    property_languages: dict[str, str] = Field(
        default_factory=dict, validation_alias="PROPERTY_LANGUAGES"
    )
    journey_pre_arrival_days: int = Field(3, validation_alias="JOURNEY_PRE_ARRIVAL_DAYS", ge=0)
    journey_pre_arrival_hour: int = Field(
        10, validation_alias="JOURNEY_PRE_ARRIVAL_HOUR", ge=0, le=23
    )
    journey_mid_stay_hour: int = Field(10, validation_alias="JOURNEY_MID_STAY_HOUR", ge=0, le=23)
    journey_review_delay_hours: int = Field(6, validation_alias="JOURNEY_REVIEW_DELAY_HOURS", ge=0)
    # Empty: no quiet hours.
    journey_quiet_hours: str = Field(
        "21:00-08:00",
        validation_alias="JOURNEY_QUIET_HOURS",
        pattern=r"^(\d\d:\d\d-\d\d:\d\d)?$",
    )
    journey_idle_days: int = Field(30, validation_alias="JOURNEY_IDLE_DAYS", ge=1)
    journey_max_history_events: int = Field(
        5000, validation_alias="JOURNEY_MAX_HISTORY_EVENTS", ge=100
    )

    # Reactions
    disabled_reactions: str = Field("", validation_alias="REACTOR_DISABLED_REACTIONS")

    # Worker: activities it runs at once (the provider SDKs' thread pool is this large).
    worker_max_concurrent_activities: int = Field(
        100, validation_alias="WORKER_MAX_CONCURRENT_ACTIVITIES", ge=1, le=1000
    )
    # ... of which one provider (one activity class) may hold at most this many; an
    # attempt over it is refused at once and retried later (activities/policy.py).
    worker_max_activities_per_provider: int = Field(
        50, validation_alias="WORKER_MAX_ACTIVITIES_PER_PROVIDER", ge=1, le=1000
    )
    # Workflow tasks, the sticky cache and pollers: the SDK's defaults (README).
    worker_max_concurrent_workflow_tasks: int = Field(
        100, validation_alias="WORKER_MAX_CONCURRENT_WORKFLOW_TASKS", ge=2, le=1000
    )
    # At least 1: with no cache, every workflow task ends in an eviction, which cancels
    # the local activities still in flight (the router's plan, the journey's policy);
    # on a loaded worker that can keep a workflow from ever completing.
    worker_max_cached_workflows: int = Field(
        1000, validation_alias="WORKER_MAX_CACHED_WORKFLOWS", ge=1, le=100000
    )
    worker_workflow_task_pollers: int = Field(
        5, validation_alias="WORKER_WORKFLOW_TASK_POLLERS", ge=2, le=100
    )
    worker_activity_task_pollers: int = Field(
        5, validation_alias="WORKER_ACTIVITY_TASK_POLLERS", ge=1, le=100
    )
    # The workflow sandbox at run time (README: "What an event costs"); the replay
    # tests and `reactor check-replay` always run the strict one.
    worker_workflow_sandbox: Literal["reactions", "on", "off"] = Field(
        "reactions", validation_alias="WORKER_WORKFLOW_SANDBOX"
    )

    # Metrics: the worker serves Temporal SDK metrics on this port; unset: off.
    worker_metrics_port: int | None = Field(
        None, validation_alias="WORKER_METRICS_PORT", gt=0, le=65535
    )

    # Logs
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_format: Literal["json", "text"] = Field("json", validation_alias="LOG_FORMAT")

    @field_validator(
        "sendgrid_api_key",
        "temporal_api_key",
        "webhook_secret",
        "slack_webhook_url",
        "slack_support_webhook_url",
        "crm_api_url",
        "crm_api_token",
        "event_log_url",
        "event_log_token",
        "support_email",
        "email_templates_dir",
        "slack_supervisor_webhook_url",
        "teams_webhook_url",
        "teams_support_webhook_url",
        "teams_supervisor_webhook_url",
        "forward_targets",
        "pms_api_url",
        "pms_api_token",
        "likemagic_api_url",
        "likemagic_token_url",
        "likemagic_client_id",
        "likemagic_client_secret",
        "likemagic_scope",
        "encryption_keys",
        "codec_token",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "property_names",
        "housekeeping_sla_minutes",
        "property_timezones",
        "property_languages",
        mode="before",
    )
    @classmethod
    def _json_object(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("property_timezones")
    @classmethod
    def _known_time_zones(cls, value: dict[str, str]) -> dict[str, str]:
        for property_id, zone in value.items():
            check_time_zone(zone, f"PROPERTY_TIMEZONES (property {property_id})")
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _usable_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_keys(value.get_secret_value())
        return value

    @field_validator("journey_quiet_hours")
    @classmethod
    def _quiet_hours_are_times_of_day(cls, value: str) -> str:
        for part in value.split("-") if value else []:
            if not TIME_OF_DAY.fullmatch(part):
                hint = "; for quiet hours until midnight write 00:00" if part == "24:00" else ""
                raise ValueError(
                    f"JOURNEY_QUIET_HOURS={value}: {part} is not a time of day "
                    f"(00:00 to 23:59){hint}"
                )
        return value

    @model_validator(mode="before")
    @classmethod
    def _families_given(cls, values: Any) -> Any:
        # SENDGRID_TEMPLATE_*, REACTION_URL_* given as keyword arguments (tests, overrides).
        if isinstance(values, dict):
            for prefix, field_name in VARIABLE_FAMILIES.items():
                given = _family_variables(values, prefix)
                if given:
                    values = {**values}
                    values[field_name] = {**values.get(field_name, {}), **given}
        return values

    def sendgrid_template(self, kind: str, language: str | None = None) -> str | None:
        """The SendGrid dynamic template ID for an email kind in a language:
        SENDGRID_TEMPLATE_<KIND>_<LANG>, else SENDGRID_TEMPLATE_<KIND>."""
        names = [f"{kind}_{language}".upper()] if language else []
        names.append(kind.upper())
        return next(
            (self.sendgrid_templates[n] for n in names if n in self.sendgrid_templates), None
        )

    def reaction_url(self, reaction: str) -> str | None:
        """The endpoint of a reaction (REACTION_URL_<REACTION>), None when unset."""
        return self.reaction_urls.get(
            reaction_url_variable(reaction).removeprefix(REACTION_URL_PREFIX)
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        families = _VariableFamilies(settings_cls, env_settings, dotenv_settings)
        return (init_settings, env_settings, dotenv_settings, families, file_secret_settings)

    @model_validator(mode="after")
    def _budget_inside_the_ack_deadline(self) -> Settings:
        if self.intake_start_budget_seconds >= self.webhook_ack_timeout_seconds:
            raise ValueError(
                f"INTAKE_START_BUDGET_SECONDS={self.intake_start_budget_seconds:g} must be "
                f"below WEBHOOK_ACK_TIMEOUT_SECONDS={self.webhook_ack_timeout_seconds:g}: "
                "the queue write comes after the budget, inside the deadline"
            )
        return self

    def likemagic_missing(self) -> list[str]:
        """The Open API variables still unset (empty: the client is configured)."""
        needed = {
            "LIKEMAGIC_API_URL": self.likemagic_api_url,
            "LIKEMAGIC_TOKEN_URL": self.likemagic_token_url,
            "LIKEMAGIC_CLIENT_ID": self.likemagic_client_id,
            "LIKEMAGIC_CLIENT_SECRET": self.likemagic_client_secret,
        }
        return [name for name, value in needed.items() if value is None]

    def housekeeping_task_type_list(self) -> list[str]:
        return _comma_list(self.housekeeping_task_types)

    def housekeeping_urgent_type_list(self) -> list[str]:
        return _comma_list(self.housekeeping_urgent_types)

    def disabled_reaction_names(self) -> list[str]:
        return _comma_list(self.disabled_reactions)

    def event_log_topic_list(self) -> list[str] | None:
        """The topics the activity log forwards; None means every topic."""
        topics = _comma_list(self.event_log_topics)
        return None if not topics or "*" in topics else topics

    def webhook_secrets(self) -> list[bytes]:
        """The accepted secrets: several, comma-separated, so a secret can be rotated."""
        if self.webhook_secret is None:
            return []
        raw = self.webhook_secret.get_secret_value()
        return [part.strip().encode() for part in raw.split(",") if part.strip()]

    def check_webhook_secret(self) -> None:
        """Raise when the API must not start: no secret, or a weak one in production."""
        secrets = self.webhook_secrets()
        if not secrets:
            raise ValueError(
                "WEBHOOK_SECRET is not set: the webhook would accept anyone's events. "
                "Set it to the secret of the LIKE MAGIC subscription (several, comma-separated, "
                "while rotating)."
            )
        if self.environment != "development":
            weak = [s for s in secrets if s.decode().lower() in WEAK_SECRETS or len(s) < 16]
            if weak:
                raise ValueError(
                    "WEBHOOK_SECRET holds a weak secret (a placeholder, or shorter than 16 "
                    "characters); use the subscription's generated secret."
                )

    def encryption_key_ring(self, dev_key_file: Path = DEV_KEY_FILE) -> list[Key]:
        """The keys of REACTOR_ENCRYPTION_KEYS, else those `reactor dev` created in this
        checkout's var/ (empty: neither)."""
        if self.encryption_keys is not None:
            return parse_keys(self.encryption_keys.get_secret_value())
        return read_key_file(dev_key_file) or []

    def check_encryption_keys(self, dev_key_file: Path = DEV_KEY_FILE) -> None:
        """Raise when the API or worker must not start: guest data would reach Temporal
        unencrypted, or (outside development) encrypted with a development key."""
        if self.encryption_keys is not None:
            return
        if self.environment != "development":
            raise ValueError(
                "REACTOR_ENCRYPTION_KEYS is not set: guest data would reach Temporal "
                "unencrypted. Set it to `id:base64-of-32-random-bytes` (docs/deploy.md, "
                '"Guest data"); every API, worker and CLI of this Temporal namespace needs it.'
            )
        if not self.encryption_key_ring(dev_key_file):
            raise ValueError(
                "REACTOR_ENCRYPTION_KEYS is not set and there is no development key "
                f"({dev_key_file}): run `reactor dev` once, or set the variable."
            )

    def check_codec_token(self) -> None:
        """Raise when the codec server's token is a placeholder outside development."""
        if self.codec_token is None or self.environment == "development":
            return
        token = self.codec_token.get_secret_value()
        if token.lower() in WEAK_SECRETS or len(token) < 16:
            raise ValueError(
                "REACTOR_CODEC_TOKEN is weak (a placeholder, or shorter than 16 characters): "
                "anyone guessing it reads guest data; generate a long random one."
            )


def check_time_zone(zone: str, where: str) -> None:
    """Raise a ValueError naming ``where`` unless ``zone`` is an IANA time zone."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{where}: {zone!r} is not an IANA time zone (such as Europe/Zurich)"
        ) from None


def problems(err: ValidationError) -> str:
    """A validation error on one line, naming each field (variable) once."""
    lines = []
    for e in err.errors():
        where = ".".join(map(str, e["loc"]))
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(msg if msg.startswith(where) else f"{where}: {msg}")
    return "; ".join(lines)


def reaction_url_variable(reaction: str) -> str:
    """The variable holding a reaction's endpoint: REACTION_URL_CONDITION_ALERT."""
    return REACTION_URL_PREFIX + reaction.replace("-", "_").upper()


def _family_variables(values: Mapping[str, Any], prefix: str) -> dict[str, str]:
    """``{"WELCOME_DE": "d-..."}`` from ``SENDGRID_TEMPLATE_WELCOME_DE=d-...`` (for the
    prefix ``SENDGRID_TEMPLATE_``); blanks are unset."""
    found: dict[str, str] = {}
    for name, value in values.items():
        if name.upper().startswith(prefix) and isinstance(value, str):
            if value.strip():
                found[name.upper().removeprefix(prefix)] = value.strip()
    return found


class _VariableFamilies(PydanticBaseSettingsSource):
    """The SENDGRID_TEMPLATE_* and REACTION_URL_* variables of the `.env` file and the
    environment (which wins), each family as one mapping: their names are open-ended."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        env: PydanticBaseSettingsSource,
        dotenv: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._sources = (dotenv, env)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for prefix, field_name in VARIABLE_FAMILIES.items():
            found: dict[str, str] = {}
            for source in self._sources:
                found.update(_family_variables(getattr(source, "env_vars", {}) or {}, prefix))
            if found:
                values[field_name] = found
        return values


def _comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and `.env`, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
