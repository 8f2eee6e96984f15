"""The failure policy every integration follows, and the timeouts workflows call them with.

- 5xx, 429, connection errors and timeouts raise a retryable error; a 429 or 503
  with ``Retry-After`` is retried after that delay.
- Any other 4xx, and invalid input, raise ``IntegrationRejected``: not retried,
  the message names the provider, the status and the provider's own error text.
- The provider's error text is scrubbed of guest data first (email addresses, phone
  numbers, and the names and addresses of the request), since it goes on to logs,
  alerts and workflow histories.

Workflows call integrations with ``INTEGRATION_RETRY_POLICY``: 1 s doubling to
2 minutes between attempts, for at most ``INTEGRATION_SCHEDULE_TO_CLOSE`` (30
minutes) in all, each attempt bounded by ``INTEGRATION_START_TO_CLOSE``.

Timeouts never retry a request that may still succeed: an attempt outlives its HTTP
request (HTTP_TIMEOUT_SECONDS and SENDGRID_TIMEOUT_SECONDS are at most
``MAX_HTTP_TIMEOUT_SECONDS``, well under the start-to-close), so a slow provider is
waited for rather than asked twice. A dead worker is noticed within
``INTEGRATION_HEARTBEAT_TIMEOUT`` instead: every activity heartbeats while it runs
(``Heartbeats``, a worker interceptor), from its first second on: the timeout counts from
the start, and an activity done within a second (most are) costs Temporal no heartbeat.

The provider SDKs that block (SendGrid, Slack) run on a pool of their own, as large
as the worker's activity concurrency (``in_provider_thread``), never on the small
default pool, so a slow provider cannot hold up unrelated reactions.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Literal, NoReturn, TypeVar

import httpx
from pydantic import BaseModel, SecretStr
from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

T = TypeVar("T")

INTEGRATION_REJECTED = "IntegrationRejected"

INTEGRATION_START_TO_CLOSE = timedelta(minutes=2)
# The longest HTTP timeout the settings allow: an attempt must outlive its request.
MAX_HTTP_TIMEOUT_SECONDS = 100.0
INTEGRATION_HEARTBEAT_TIMEOUT = timedelta(seconds=5)
HEARTBEAT_EVERY = timedelta(seconds=1)
INTEGRATION_SCHEDULE_TO_CLOSE = timedelta(minutes=30)
INTEGRATION_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    non_retryable_error_types=[INTEGRATION_REJECTED],
)

# Failure alerts must not hold up the router for long.
ALERT_SCHEDULE_TO_CLOSE = timedelta(minutes=5)


class Delivery(BaseModel):
    """What an integration did: ``sent``, or ``skipped`` with the reason (not configured)."""

    status: Literal["sent", "skipped"]
    detail: str = ""
    provider: str = ""
    reference: str = ""
    # A guest-facing send the router runs itself: which source gave the guest
    # ("guest from the event"), for the reaction's outcome.
    served_by: str = ""

    @classmethod
    def sent(cls, provider: str, detail: str = "", reference: str = "") -> Delivery:
        return cls(status="sent", provider=provider, detail=detail, reference=reference)

    @classmethod
    def skipped(cls, reason: str) -> Delivery:
        return cls(status="skipped", detail=reason)


class _HeartbeatingActivity(ActivityInboundInterceptor):
    """Heartbeats every ``HEARTBEAT_EVERY``, the first after one interval: the SDK sends
    a first heartbeat to the server at once, a request and a write for every activity,
    while the heartbeat timeout already counts from the start (bench/README.md: 2 requests
    and 5 persistence operations less per check-in)."""

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if activity.info().is_local:
            return await self.next.execute_activity(input)

        async def beat() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_EVERY.total_seconds())
                activity.heartbeat()

        beating = asyncio.create_task(beat())
        try:
            return await self.next.execute_activity(input)
        finally:
            beating.cancel()


class Heartbeats(Interceptor):
    """Every activity heartbeats while it runs: with ``INTEGRATION_HEARTBEAT_TIMEOUT``
    on the call, a worker that died mid-call is noticed in seconds, not when the
    start-to-close runs out. (Local activities have no heartbeat.)"""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _HeartbeatingActivity(next)


PROVIDER_BUSY = "ProviderBusy"


class _ProviderShareActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, share: ProviderShare) -> None:
        super().__init__(next)
        self._share = share

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        provider = provider_of(input.fn)
        if activity.info().is_local or provider in self._share.exempt:
            return await self.next.execute_activity(input)
        held = self._share.held
        if held.get(provider, 0) >= self._share.limit:
            # Refused before any call: its slot goes back to the worker at once, and
            # Temporal tries it again after the retry policy's backoff.
            raise ApplicationError(
                f"{provider} already holds {self._share.limit} of this worker's activity "
                "slots (WORKER_MAX_ACTIVITIES_PER_PROVIDER): tried again later",
                type=PROVIDER_BUSY,
            )
        held[provider] = held.get(provider, 0) + 1
        try:
            return await self.next.execute_activity(input)
        finally:
            held[provider] -= 1


def provider_of(fn: Callable[..., Any]) -> str:
    """The provider an activity calls: its class (one per outside system), or the one
    its class names (``provider``), else its name."""
    owner = getattr(fn, "__self__", None)
    if owner is None:
        return getattr(fn, "__name__", repr(fn))
    return getattr(owner, "provider", None) or type(owner).__name__


class ProviderShare(Interceptor):
    """One provider's calls hold at most ``limit`` of a worker's activity slots at once
    (WORKER_MAX_ACTIVITIES_PER_PROVIDER). A slow provider would otherwise fill every
    slot with calls waiting for it, and the activities of other reactions (other
    providers, deliveries to journeys) would wait behind them. An attempt over the
    limit fails at once, retryable (``ProviderBusy``), before it calls anything, and is
    retried with the integration policy's backoff. Local activities have slots of
    their own and are not counted; nor are the ``exempt`` classes (reactor's own
    Temporal calls: the deliveries to journeys, which every reaction needs anyway)."""

    def __init__(self, limit: int, exempt: Iterable[str] = ()) -> None:
        self.limit = limit
        self.exempt = frozenset(exempt)
        self.held: dict[str, int] = {}

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ProviderShareActivity(next, self)


@functools.cache
def _provider_pool(size: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix="provider")


async def in_provider_thread(size: int, call: Callable[[], T]) -> T:
    """Run a blocking provider SDK call on the provider pool of ``size`` threads (the
    worker's activity concurrency), one per worker process."""
    return await asyncio.get_running_loop().run_in_executor(_provider_pool(size), call)


def http_client(
    base_url: str | None, token: SecretStr | None, timeout: float
) -> httpx.AsyncClient | None:
    """One client per outside system, built at worker start; None when not configured."""
    if not base_url:
        return None
    headers = {"User-Agent": "likemagic-reactor"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token.get_secret_value()}"
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)


EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
# Seven digits or more, with the separators phone numbers are written with.
PHONE = re.compile(r"(?<![\w])\+?\(?\d(?:[\s().-]{0,2}\d){6,}(?![\w])")
ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")


def _phone_or_date(match: re.Match[str]) -> str:
    found = match.group(0)
    return found if ISO_DATE.match(found) else "<phone>"


def scrub(text: str, personal: Iterable[str | None] = ()) -> str:
    """``text`` without guest data: the ``personal`` values of the request (a name, an
    address), any email address and any phone number, each replaced by a placeholder."""
    for value in sorted({v.strip() for v in personal if v and len(v.strip()) >= 3}, key=len)[::-1]:
        text = re.sub(re.escape(value), "<guest>", text, flags=re.IGNORECASE)
    text = EMAIL.sub("<email>", text)
    return PHONE.sub(_phone_or_date, text)


def provider_error_text(
    body: bytes | str | None, limit: int = 500, personal: Iterable[str | None] = ()
) -> str:
    """The provider's own error text from a response body, scrubbed and shortened."""
    return scrub(_error_text(body, limit * 2), personal)[:limit]


def _error_text(body: bytes | str | None, limit: int) -> str:
    if not body:
        return ""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        return text.strip()[:limit]
    if isinstance(parsed, dict):
        errors = parsed.get("errors")
        if isinstance(errors, list):
            messages = [str(e.get("message", "")) for e in errors if isinstance(e, dict)]
            if any(messages):
                return "; ".join(m for m in messages if m)[:limit]
        for key in ("message", "error", "detail"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])[:limit]
    return text.strip()[:limit]


def retry_after(headers: Mapping[str, str] | None) -> timedelta | None:
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return timedelta(seconds=min(600.0, max(1.0, float(value)))) if value else None
    except ValueError:
        return None


def raise_for_status(
    provider: str,
    status: int,
    body: bytes | str | None,
    headers: Mapping[str, str] | None = None,
    action: str = "the request",
    personal: Iterable[str | None] = (),
) -> None:
    """Nothing for 2xx; otherwise the error the failure policy calls for. ``personal``:
    the guest data the request carried (names, addresses), kept out of the message."""
    if 200 <= status < 300:
        return
    text = provider_error_text(body, personal=personal)
    if status in (429, 503):
        raise ApplicationError(
            f"{provider} {status} ({'rate limited' if status == 429 else 'unavailable'}): {text}",
            next_retry_delay=retry_after(headers),
        )
    if 400 <= status < 500:
        raise ApplicationError(
            f"{provider} rejected {action}: {status} {text}".rstrip(),
            type=INTEGRATION_REJECTED,
            non_retryable=True,
        )
    raise ApplicationError(f"{provider} error {status}: {text}".rstrip())


def unreachable(provider: str, err: BaseException) -> NoReturn:
    """A connection error or timeout: retryable."""
    raise ApplicationError(
        f"{provider} unreachable: {type(err).__name__}: {scrub(str(err))}"
    ) from None


def invalid_input(provider: str, problem: str) -> NoReturn:
    raise ApplicationError(
        f"{provider}: invalid input: {scrub(problem)}",
        type=INTEGRATION_REJECTED,
        non_retryable=True,
    )
