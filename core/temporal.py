"""One way to reach Temporal: the connect helper, search attributes, namespace setup."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig, TLSConfig

from core.codec import data_converter
from core.events import LikeMagicEvent
from core.settings import Settings

log = logging.getLogger("reactor.temporal")

# Search attributes on every execution of an event (router and reactions), so the
# Temporal UI can list them by topic, object and property.
TOPIC = SearchAttributeKey.for_keyword("Topic")
OBJECT_TYPE = SearchAttributeKey.for_keyword("ObjectType")
OBJECT_ID = SearchAttributeKey.for_keyword("ObjectId")
PMS_PROPERTY_ID = SearchAttributeKey.for_keyword("PmsPropertyId")
# The reservation an execution belongs to (long-running workflows, and events whose
# context names one, such as a guest's message), the housekeeper assigned, and the
# guest profile an event names: what `reactor forget` finds a guest's executions by.
# Ids only: never a name, an email or a message text.
RESERVATION_ID = SearchAttributeKey.for_keyword("ReservationId")
HOUSEKEEPER = SearchAttributeKey.for_keyword("Housekeeper")
PROFILE_ID = SearchAttributeKey.for_keyword("ProfileId")
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[str], ...] = (
    TOPIC,
    OBJECT_TYPE,
    OBJECT_ID,
    PMS_PROPERTY_ID,
    RESERVATION_ID,
    HOUSEKEEPER,
    PROFILE_ID,
)

# For the webhook: a dead server must turn into a 503 in well under 5 s, while the
# SDK's default retries take about 10 s before giving up.
FAST_FAIL_RETRY = RetryConfig(
    initial_interval_millis=100,
    multiplier=2.0,
    max_interval_millis=1000,
    max_elapsed_time_millis=2500,
    max_retries=3,
)


def event_search_attributes(event: LikeMagicEvent) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[str]] = [SearchAttributePair(TOPIC, event.topic)]
    if event.object_type:
        pairs.append(SearchAttributePair(OBJECT_TYPE, str(event.object_type)))
    if event.object_id:
        pairs.append(SearchAttributePair(OBJECT_ID, event.object_id))
    if event.pms_property_id:
        pairs.append(SearchAttributePair(PMS_PROPERTY_ID, event.pms_property_id))
    reservation = context_id(event, "reservationId")
    if reservation and reservation != event.object_id:
        pairs.append(SearchAttributePair(RESERVATION_ID, reservation))
    profile = context_id(event, "userProfileId")
    if profile:
        pairs.append(SearchAttributePair(PROFILE_ID, profile))
    return TypedSearchAttributes(pairs)


def context_id(event: LikeMagicEvent, key: str) -> str | None:
    """An id the event's context names (numbers as the platform sends some), else None."""
    value = event.context.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if text and len(text) <= 200 else None


def dev_server_search_attribute_args() -> list[str]:
    """`temporal server start-dev` flags that register reactor's search attributes."""
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args


def _tls(settings: Settings) -> bool | TLSConfig:
    cert, key = settings.temporal_tls_client_cert_path, settings.temporal_tls_client_key_path
    if cert and key:
        return TLSConfig(client_cert=cert.read_bytes(), client_private_key=key.read_bytes())
    # An API key means Temporal Cloud (or a cluster behind TLS): always TLS.
    return settings.temporal_tls or settings.temporal_api_key is not None


async def connect(
    settings: Settings,
    *,
    lazy: bool = False,
    retry_config: RetryConfig | None = None,
    runtime: Runtime | None = None,
) -> Client:
    """A client with the pydantic data converter and the payload codec (guest data is
    encrypted before it reaches Temporal): API, worker, CLI and tests all use this.

    ``runtime`` carries telemetry (the worker's Prometheus metrics); None: the default.
    """
    keys = settings.encryption_key_ring()
    if not keys:
        raise ValueError(
            "no encryption key: set REACTOR_ENCRYPTION_KEYS, or run `reactor dev` once in "
            "this checkout (it creates a development key in var/)"
        )
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=(
            settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
        ),
        tls=_tls(settings),
        data_converter=data_converter(keys),
        retry_config=retry_config,
        lazy=lazy,
        runtime=runtime,
    )


async def received_event(
    client: Client, event_id: str, run_id: str | None = None
) -> LikeMagicEvent | None:
    """The event as the webhook handed it to its router (the router's first history
    event), or None when that history does not start with one."""
    handle = client.get_workflow_handle(event_id, run_id=run_id)
    async for first in handle.fetch_history_events(page_size=1):
        started = first.workflow_execution_started_event_attributes
        [event] = await client.data_converter.decode(started.input.payloads, [LikeMagicEvent])
        return event if isinstance(event, LikeMagicEvent) else None
    return None


async def setup_namespace(client: Client, retention_days: int) -> list[str]:
    """Register reactor's search attributes and raise the namespace's retention.

    Idempotent: attributes that exist are left alone and the retention is only
    ever raised. Returns what it changed, for the caller to report.
    """
    changes: list[str] = []
    namespace = client.namespace
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for key in SEARCH_ATTRIBUTES
        if key.name not in listed.custom_attributes
    }
    for key in SEARCH_ATTRIBUTES:
        existing = listed.custom_attributes.get(key.name)
        if existing is not None and existing != IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD:
            raise RuntimeError(
                f"search attribute {key.name} exists in namespace {namespace} "
                "with a type other than Keyword"
            )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
        changes.append("registered search attributes " + ", ".join(sorted(missing)))

    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    current = described.config.workflow_execution_retention_ttl.ToTimedelta()
    wanted = timedelta(days=retention_days)
    if current < wanted:
        config = NamespaceConfig()
        config.workflow_execution_retention_ttl.FromTimedelta(wanted)
        await client.workflow_service.update_namespace(
            UpdateNamespaceRequest(
                namespace=namespace,
                config=config,
            )
        )
        changes.append(f"raised retention of {namespace} from {current} to {wanted}")
    return changes
