"""The LIKE MAGIC Open API: a guest's profile, read politely.

OAuth 2.0 client credentials (Authlib's httpx client): one access token per worker
process, shared by every concurrent activity; it is requested under a lock (never
two token requests at once), renewed ``LIKEMAGIC_TOKEN_LEEWAY_SECONDS`` before it
expires (tokens live 300 s, there are no refresh tokens), and renewed once when the
API answers 401. A leaky-bucket limiter (aiolimiter) keeps the worker under the
service account's budget (LIKEMAGIC_RATE_PER_SECOND, bursts of LIKEMAGIC_BURST);
a 429 that comes anyway is retried after its Retry-After by the failure policy.
Neither the client secret nor a token ever reaches a log line or an error text.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import authlib.deprecate  # noqa: F401,E402 - first: it sets its own warning filter
import httpx
from aiolimiter import AsyncLimiter
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.policy import INTEGRATION_REJECTED, invalid_input, raise_for_status, unreachable
from core.guest import Guest, guest_fields
from core.logging import activity_fields
from core.settings import Settings

with warnings.catch_warnings():
    # Authlib prefers the httpx2 fork and warns when it finds httpx; reactor uses httpx.
    warnings.simplefilter("ignore")
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import AsyncOAuth2Client

log = logging.getLogger("reactor.likemagic")

PROVIDER = "LIKE MAGIC API"
# Token endpoint client authentication, as LIKEMAGIC_CLIENT_AUTH names it.
CLIENT_AUTH_METHODS = {"body": "client_secret_post", "basic": "client_secret_basic"}


class ProfileLookup(BaseModel):
    """A profile read: the guest, or None with the reason (not configured, not found)."""

    guest: Guest | None = None
    detail: str = ""


class LikeMagicApi:
    """The Open API client of one worker process: its token, its limiter, its connections."""

    def __init__(self, settings: Settings) -> None:
        assert not settings.likemagic_missing()
        assert settings.likemagic_api_url and settings.likemagic_client_secret
        self._base = settings.likemagic_api_url.rstrip("/")
        self._token_url = settings.likemagic_token_url
        self._leeway = settings.likemagic_token_leeway_seconds
        self._oauth = AsyncOAuth2Client(
            client_id=settings.likemagic_client_id,
            client_secret=settings.likemagic_client_secret.get_secret_value(),
            scope=settings.likemagic_scope,
            token_endpoint=self._token_url,
            token_endpoint_auth_method=CLIENT_AUTH_METHODS[settings.likemagic_client_auth],
            grant_type="client_credentials",
            leeway=self._leeway,
            timeout=settings.http_timeout_seconds,
            headers={"User-Agent": "likemagic-reactor"},
        )
        burst = settings.likemagic_burst
        self._limiter = AsyncLimiter(burst, burst / settings.likemagic_rate_per_second)
        self._token_lock = asyncio.Lock()
        # How many tokens this process requested (the worker's figure, for tests and logs).
        self.tokens_requested = 0

    async def _ensure_token(self, rejected: str | None = None) -> None:
        """A live token, requested only when there is none, it is about to expire, or
        the API just rejected ``rejected`` (and no other caller has renewed it since)."""
        async with self._token_lock:
            token = self._oauth.token
            if token and not token.is_expired(leeway=self._leeway):
                if rejected is None or token.get("access_token") != rejected:
                    return
            refused: httpx.Response | None = None
            try:
                await self._oauth.fetch_token(self._token_url, grant_type="client_credentials")
            except httpx.TransportError as err:
                unreachable(f"{PROVIDER} token endpoint", err)
            except httpx.HTTPStatusError as err:
                refused = err.response
            except OAuthError as err:
                raise ApplicationError(
                    f"{PROVIDER} token endpoint rejected the client credentials: {err.error}",
                    type=INTEGRATION_REJECTED,
                    non_retryable=True,
                ) from None
            if refused is not None:
                # Not its body: a token endpoint may echo what it was sent.
                raise_for_status(
                    f"{PROVIDER} token endpoint",
                    refused.status_code,
                    None,
                    refused.headers,
                    "the client credentials",
                )
            self.tokens_requested += 1
            log.info("likemagic token issued", extra=activity_fields(count=self.tokens_requested))

    async def get(self, path: str) -> httpx.Response:
        """GET ``<LIKEMAGIC_API_URL><path>`` with the shared token, within the rate limit;
        a 401 renews the token and tries once more."""
        for attempt in (1, 2):
            await self._ensure_token()
            used = str(self._oauth.token["access_token"])
            try:
                async with self._limiter:
                    # Our token, renewed above under our lock, rather than Authlib's own
                    # renewal on the way (a second token request for the same expiry).
                    response: httpx.Response = await self._oauth.request(
                        "GET",
                        f"{self._base}{path}",
                        withhold_token=True,
                        headers={"Authorization": f"Bearer {used}"},
                    )
            except httpx.TransportError as err:
                unreachable(PROVIDER, err)
            if response.status_code != 401 or attempt == 2:
                return response
            await self._ensure_token(rejected=used)
        raise AssertionError("unreachable")

    async def profile(self, profile_id: str) -> Guest | None:
        """``GET /profiles/<id>``: the guest, or None when the platform has no such profile."""
        response = await self.get(f"/profiles/{quote(profile_id, safe='')}")
        if response.status_code == 404:
            return None
        raise_for_status(
            PROVIDER, response.status_code, response.content, response.headers, "the profile read"
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            invalid_input(PROVIDER, "the profile answer is not a JSON object")
        guest = guest_fields(body)
        guest.profile_id = profile_id
        return guest

    async def aclose(self) -> None:
        await self._oauth.aclose()


class LikeMagicActivities:
    """Holds the worker's one ``LikeMagicApi`` (None while the Open API is not configured)."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._missing = settings.likemagic_missing()
        self.api = None if self._missing else LikeMagicApi(settings)

    def activities(self) -> list[Callable[..., Any]]:
        return [self.likemagic_profile]

    @activity.defn(name="likemagic_profile")
    async def likemagic_profile(self, profile_id: str) -> ProfileLookup:
        """Read a guest's LIKE MAGIC profile (``GET /profiles/<id>``).

        Not configured, or no such profile (404): a lookup without a guest, with the
        reason. 5xx, 429 (after its Retry-After), 503 and network errors are
        retryable; other 4xx (a 401 even after a new token) are final.
        """
        if self.api is None:
            return ProfileLookup(
                detail=f"the LIKE MAGIC Open API is not configured (set {', '.join(self._missing)})"
            )
        guest = await self.api.profile(profile_id)
        if guest is None:
            return ProfileLookup(detail=f"LIKE MAGIC has no profile {profile_id}")
        log.info("likemagic profile read", extra=activity_fields(found=True))
        return ProfileLookup(guest=guest)
