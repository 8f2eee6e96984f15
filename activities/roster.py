"""The housekeeping roster: a YAML file of staff, their zones and shifts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, field_validator
from temporalio import activity
from temporalio.client import Client

from activities.policy import invalid_input
from core.settings import Settings, check_time_zone, problems

# Ends may be 24:00 (the end of the day), never later.
SHIFT = re.compile(r"([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)")


class Staff(BaseModel):
    id: str
    name: str
    slack: str | None = None
    email: str | None = None
    floors: list[int] = []
    units: list[str] = []
    shift: str | None = None
    # Reachable outside the shift for task types marked urgent (HOUSEKEEPING_URGENT_TYPES).
    on_call: bool = False

    @field_validator("shift")
    @classmethod
    def _shift_format(cls, value: str | None) -> str | None:
        if value is not None and not SHIFT.fullmatch(value):
            raise ValueError('shift must look like "07:00-15:00" (00:00 to 24:00)')
        return value


class Roster(BaseModel):
    timezone: str = "UTC"
    staff: list[Staff]

    @field_validator("timezone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        check_time_zone(value, "timezone")
        return value


def read_roster(path: Path) -> Roster:
    try:
        raw = yaml.safe_load(path.read_text())
        return Roster.model_validate(raw)
    except FileNotFoundError:
        invalid_input("roster", f"HOUSEKEEPING_ROSTER file {path} does not exist")
    except (yaml.YAMLError, ValidationError) as err:
        invalid_input("roster", f"{path} is not a valid roster: {err}")


def check_roster(path: Path) -> None:
    """Raise a ValueError naming HOUSEKEEPING_ROSTER unless the roster file is valid
    (for the worker's start: a bad roster is refused before any assignment uses it)."""
    try:
        Roster.model_validate(yaml.safe_load(path.read_text()))
    except OSError as err:
        raise ValueError(f"HOUSEKEEPING_ROSTER: cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"HOUSEKEEPING_ROSTER: {path} is not YAML: {err}") from None
    except ValidationError as err:
        raise ValueError(
            f"HOUSEKEEPING_ROSTER: {path} is not a valid roster: {problems(err)}"
        ) from None


class RosterActivities:
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._path = settings.housekeeping_roster

    def activities(self) -> list[Callable[..., Any]]:
        return [self.housekeeping_roster]

    @activity.defn(name="housekeeping_roster")
    async def housekeeping_roster(self) -> Roster:
        """The roster as it is now (read on every assignment, so edits apply at once).
        A missing or invalid file is a non-retryable error."""
        return await asyncio.to_thread(read_roster, self._path)
