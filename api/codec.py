"""The codec server: Temporal's remote codec protocol, so the Temporal UI (and
`temporal` CLI) of people allowed to can show decrypted payloads.

    POST /codec/decode   {"payloads": [{"metadata": {...}, "data": "..."}]}  (protobuf JSON)
    POST /codec/encode   the same shape

Outside development every request needs ``Authorization: Bearer <REACTOR_CODEC_TOKEN>``
(the reverse proxy in front of the UI adds it, docs/deploy.md); the browser calls
the endpoint directly, so the UI's origin (TEMPORAL_UI_URL) alone gets CORS headers.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from api.deps import SettingsDep, TemporalDep
from api.errors import error_response
from core.codec import DecryptionError
from core.logging import fields
from core.settings import Settings

log = logging.getLogger("reactor.codec")
router = APIRouter(prefix="/codec", tags=["codec"])

# What the UI sends: its namespace, the JSON body, and the token (the proxy's, or the
# UI's own access token when it passes it on).
CORS_HEADERS = ["Authorization", "Content-Type", "X-Namespace"]


def ui_origin(settings: Settings) -> str:
    """The scheme, host and port of TEMPORAL_UI_URL: what a browser sends as Origin."""
    scheme, _, rest = settings.temporal_ui_url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


class CodecCORS:
    """CORSMiddleware around the codec endpoints only: other requests (the webhook) pass
    straight through, without its per-request header parsing and wrapped ``send``."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(router.prefix):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def add_cors(app: Any, settings: Settings) -> None:
    """CORS for the codec endpoints, for the UI's origin only."""
    app.add_middleware(
        CodecCORS,
        allow_origins=[ui_origin(settings)],
        allow_methods=["POST"],
        allow_headers=CORS_HEADERS,
        allow_credentials=True,
        max_age=600,
    )


def _refusal(settings: Settings, authorization: str | None) -> JSONResponse | None:
    token = settings.codec_token.get_secret_value() if settings.codec_token else None
    if token is None:
        if settings.environment == "development":
            return None
        return error_response(
            403,
            "codec_disabled",
            "the codec server is off: set REACTOR_CODEC_TOKEN to let the Temporal UI decode",
        )
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        return error_response(
            401,
            "unauthorized",
            "a bearer token is required (Authorization: Bearer <REACTOR_CODEC_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return None


async def _convert(
    request: Request,
    settings: Settings,
    temporal: Any,
    authorization: str | None,
    namespace: str | None,
    direction: str,
) -> Response:
    refused = _refusal(settings, authorization)
    if refused is not None:
        log.warning("codec request refused", extra=fields(direction=direction, namespace=namespace))
        return refused
    if namespace and namespace != settings.temporal_namespace:
        return error_response(
            400,
            "unknown_namespace",
            f"this codec serves namespace {settings.temporal_namespace}, not {namespace}",
        )
    body = await request.body()
    payloads = Payloads()
    try:
        json_format.Parse(body, payloads)
    except json_format.ParseError:
        return error_response(
            400, "invalid_request", 'the body must be {"payloads": [...]} (protobuf JSON)'
        )
    codec = temporal.data_converter.payload_codec
    try:
        if direction == "decode":
            result = await codec.decode(payloads.payloads)
        else:
            result = await codec.encode(payloads.payloads)
    except DecryptionError as err:
        return error_response(422, "undecodable", str(err))
    log.info(
        "codec request",
        extra=fields(direction=direction, namespace=namespace, payloads=len(result)),
    )
    return Response(
        json_format.MessageToJson(Payloads(payloads=result)), media_type="application/json"
    )


NamespaceHeader = Annotated[str | None, Header(alias="X-Namespace")]
AuthorizationHeader = Annotated[str | None, Header()]


@router.post("/decode")
async def decode(
    request: Request,
    settings: SettingsDep,
    temporal: TemporalDep,
    authorization: AuthorizationHeader = None,
    x_namespace: NamespaceHeader = None,
) -> Response:
    """Decrypt payloads encrypted by reactor (others are returned as they are)."""
    return await _convert(request, settings, temporal, authorization, x_namespace, "decode")


@router.post("/encode")
async def encode(
    request: Request,
    settings: SettingsDep,
    temporal: TemporalDep,
    authorization: AuthorizationHeader = None,
    x_namespace: NamespaceHeader = None,
) -> Response:
    """Encrypt payloads with the current key (the UI uses it to send signals and the like)."""
    return await _convert(request, settings, temporal, authorization, x_namespace, "encode")
