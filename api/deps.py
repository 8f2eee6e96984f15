"""FastAPI dependencies, as Annotated aliases.

They are ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, two
thread hops per request for reading ``app.state`` (a fifth of the webhook's CPU).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from temporalio.client import Client

from core.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_temporal(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


SettingsDep = Annotated[Settings, Depends(get_settings)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
