"""The PMS / LIKE MAGIC API: writing a task's assignee back, and taking it back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from activities.policy import (
    Delivery,
    http_client,
    invalid_input,
    raise_for_status,
    unreachable,
)
from core.logging import activity_fields
from core.settings import Settings

log = logging.getLogger("reactor.pms")


class TaskAssignee(BaseModel):
    task_id: str
    staff_id: str
    staff_name: str = ""


class ReservationDates(BaseModel):
    # A date alone ("2026-12-10") stays a date: it is local to the property, whose
    # zone the journey knows.
    arrival: datetime | date | None = None
    departure: datetime | date | None = None


class PmsActivities:
    """Holds one ``httpx.AsyncClient`` for PMS_API_URL, built once at worker start."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._http = http_client(
            settings.pms_api_url, settings.pms_api_token, settings.http_timeout_seconds
        )

    def activities(self) -> list[Callable[..., Any]]:
        return [self.pms_assign_task, self.pms_unassign_task, self.pms_reservation_dates]

    def _path(self, task_id: str) -> str:
        return f"/tasks/{quote(task_id, safe='')}/assignee"

    @activity.defn(name="pms_assign_task")
    async def pms_assign_task(self, assignee: TaskAssignee) -> Delivery:
        """PUT ``<PMS_API_URL>/tasks/<id>/assignee``: idempotent by nature.
        Skipped when PMS_API_URL is not set; failure policy of activities/policy.py."""
        if self._http is None:
            return Delivery.skipped("PMS_API_URL is not set")
        try:
            response = await self._http.put(
                self._path(assignee.task_id),
                json={"staffId": assignee.staff_id, "name": assignee.staff_name},
            )
        except httpx.TransportError as err:
            unreachable("PMS", err)
        raise_for_status(
            "PMS", response.status_code, response.content, response.headers, "the assignment"
        )
        log.info("pms task assigned", extra=activity_fields(task_id=assignee.task_id))
        return Delivery.sent("pms", f"assigned in the PMS to {assignee.staff_id}")

    @activity.defn(name="pms_unassign_task")
    async def pms_unassign_task(self, assignee: TaskAssignee) -> Delivery:
        """The undo of pms_assign_task, only while ``assignee.staff_id`` still holds the
        task: GET ``<PMS_API_URL>/tasks/<id>/assignee`` first, then DELETE it.

        Assumed PMS API (not documented): the GET answers ``{"staffId": ...}`` as the PUT
        wrote it, 404 or an empty ``staffId`` when nobody holds the task. Anyone else
        holding it (a supervisor's manual reassignment in the PMS, or an assignment PUT
        that never arrived) is left as it is: ``skipped`` with the reason. A race between
        the GET and the DELETE stays possible (the API offers no conditional DELETE).
        """
        if self._http is None:
            return Delivery.skipped("PMS_API_URL is not set")
        path = self._path(assignee.task_id)
        try:
            current = await self._http.get(path)
        except httpx.TransportError as err:
            unreachable("PMS", err)
        holder: str | None = None
        if current.status_code != 404:
            raise_for_status(
                "PMS", current.status_code, current.content, current.headers, "the lookup"
            )
            try:
                answer = current.json()
            except ValueError:
                invalid_input("PMS", "the task's assignee is not JSON")
            holder = answer.get("staffId") if isinstance(answer, dict) else None
        if holder != assignee.staff_id:
            return Delivery.skipped(
                f"the PMS task is no longer assigned to {assignee.staff_id}: left as it is"
            )
        try:
            response = await self._http.delete(path)
        except httpx.TransportError as err:
            unreachable("PMS", err)
        if response.status_code != 404:
            raise_for_status(
                "PMS", response.status_code, response.content, response.headers, "the unassignment"
            )
        log.info("pms task unassigned", extra=activity_fields(task_id=assignee.task_id))
        return Delivery.sent("pms", f"unassigned {assignee.staff_id} in the PMS")

    @activity.defn(name="pms_reservation_dates")
    async def pms_reservation_dates(self, reservation_id: str) -> ReservationDates | None:
        """GET ``<PMS_API_URL>/reservations/<id>``: its ``arrival`` and ``departure``.
        None when PMS_API_URL is not set or the PMS does not know the reservation."""
        if self._http is None:
            return None
        try:
            response = await self._http.get(f"/reservations/{quote(reservation_id, safe='')}")
        except httpx.TransportError as err:
            unreachable("PMS", err)
        if response.status_code == 404:
            return None
        raise_for_status(
            "PMS", response.status_code, response.content, response.headers, "the lookup"
        )
        try:
            return ReservationDates.model_validate(response.json())
        except ValueError as err:
            invalid_input("PMS", f"the reservation answer is not usable: {err}")
