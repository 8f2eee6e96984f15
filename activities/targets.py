"""The third parties of signed forwarding: the FORWARD_TARGETS file and its checks.

Apart from ``activities.forward`` so that the router's configuration (``activities.config``)
can read the targets' names and topics without the senders.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

from core.settings import problems

# A forward target's reaction is ``forward-<name>``, its execution ``<event id>/forward-<name>``.
FORWARD_PREFIX = "forward-"
TARGET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# Headers a target's ``headers`` may not set: the signature's and the body's own.
RESERVED_HEADERS = frozenset(
    {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "content-length"}
)
# The activity log, as a target (EVENT_LOG_URL, EVENT_LOG_TOKEN, EVENT_LOG_TOPICS).
ACTIVITY_LOG = "activity-log"


class ForwardTarget(BaseModel):
    """One third party: where events go, which topics, the signing secret, extra headers."""

    model_config = {"extra": "forbid"}

    name: str
    url: str
    topics: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    secret: SecretStr
    headers: dict[str, str] = {}

    @field_validator("name")
    @classmethod
    def _name_fits_a_workflow_id(cls, value: str) -> str:
        if not TARGET_NAME.fullmatch(value):
            raise ValueError("a name is lower-case letters, digits and '-' (e.g. partner-crm)")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError("url must be an http(s) URL")
        return value

    @field_validator("secret")
    @classmethod
    def _standard_webhooks_secret(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        key = raw.removeprefix("whsec_")
        try:
            decoded = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if not raw.startswith("whsec_") or len(decoded) < 24:
            raise ValueError(
                "secret must be a Standard Webhooks secret: whsec_ and at least 24 random "
                "bytes in base64 (e.g. whsec_$(openssl rand -base64 32))"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, value: dict[str, str]) -> dict[str, str]:
        taken = sorted(h for h in value if h.lower() in RESERVED_HEADERS)
        if taken:
            raise ValueError(f"headers may not set {', '.join(taken)}")
        return value

    @staticmethod
    def matches(patterns: list[str], topic: str) -> bool:
        return any(fnmatch.fnmatchcase(topic, pattern) for pattern in patterns)


class ForwardTargets(BaseModel):
    model_config = {"extra": "forbid"}

    targets: list[ForwardTarget] = []

    @field_validator("targets")
    @classmethod
    def _unique_names(cls, value: list[ForwardTarget]) -> list[ForwardTarget]:
        names = [t.name for t in value]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"target names must be unique: {', '.join(doubled)}")
        return value


def read_targets(path: Path | None) -> list[ForwardTarget]:
    """The targets of a FORWARD_TARGETS file (none when unset). A ValueError names the
    variable, the file and each problem, never a secret."""
    if path is None:
        return []
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ValueError(f"FORWARD_TARGETS: cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"FORWARD_TARGETS: {path} is not YAML: {err}") from None
    try:
        return ForwardTargets.model_validate(raw or {}).targets
    except ValidationError as err:
        raise ValueError(f"FORWARD_TARGETS: {path}: {problems(err)}") from None


def target_of(workflow_id: str) -> str:
    """The target name in a forward reaction's execution ID ``<event id>/forward-<name>``."""
    return workflow_id.rsplit("/", 1)[-1].removeprefix(FORWARD_PREFIX)
