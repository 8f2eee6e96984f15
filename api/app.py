"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from temporalio.client import Client

from api import codec, health, metrics, openapi, webhooks
from api.errors import install_error_handlers
from api.intake import Intake
from core.settings import Settings, load_settings
from core.temporal import FAST_FAIL_RETRY, connect


def create_app(settings: Settings, temporal_client: Client | None = None) -> FastAPI:
    """Build the API. Without an injected client, the lifespan connects to Temporal.

    The connection is lazy: the API starts, and queues events, while Temporal is down, so
    a restart order between the two never matters. The lifespan opens the intake queue
    (migrating its schema) and starts its forwarder; it fails when the store cannot open.
    """
    settings.check_webhook_secret()
    settings.check_encryption_keys()
    settings.check_codec_token()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.temporal is None:
            app.state.temporal = await connect(settings, lazy=True, retry_config=FAST_FAIL_RETRY)
        app.state.intake = await Intake.open(settings, app.state.temporal, app.state.metrics)
        try:
            yield
        finally:
            await app.state.intake.close()

    # /docs and /redoc load Swagger UI and ReDoc from the installed fastapi-offline
    # package, not from a CDN: they work on a machine without internet.
    app = FastAPIOffline(
        title="reactor",
        summary="Receives LIKE MAGIC webhook events and runs their reactions on Temporal.",
        version="0.1.0",
        lifespan=lifespan,
        # No online validator badge: it would call out to the internet.
        swagger_ui_parameters={"validatorUrl": None},
        # No OpenTelemetry from FastAPI itself: reactor exports none, and its per-request
        # check for a configured provider reads the environment on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.temporal = temporal_client
    app.state.intake = None
    app.state.metrics = metrics.WebhookMetrics()
    install_error_handlers(app)
    app.include_router(webhooks.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(codec.router)
    codec.add_cors(app, settings)
    app.add_middleware(webhooks.WebhookLane)
    openapi.install(app)
    return app


def from_environment() -> FastAPI:
    """The app of one `reactor api --workers N` process: settings from the environment."""
    from core.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
