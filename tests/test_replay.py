"""Determinism: every recorded history must replay against the current workflow code, so
a change that would break running executions fails CI. Open histories (executions still
waiting) replay up to where they stopped.

Histories are only ever added, never re-recorded or deleted: each is the only record of
what executions running in production may look like. A change to a workflow's command
sequence takes `workflow.patched` (old branch kept) or a new workflow type, and a new
recording of the new shape (see docs/deploy.md, "Changing workflow code").
"""

from __future__ import annotations

import json

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.conftest import DATA_CONVERTER
from tests.helpers import HISTORIES
from worker import STRICT_WORKFLOW_RUNNER
from workflows import registry

CLOSING = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_history_replays(path):
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    await Replayer(
        workflows=registry.workflow_classes(),
        # Our workflow modules re-imported under the sandbox's restrictions (worker.py).
        workflow_runner=STRICT_WORKFLOW_RUNNER,
        data_converter=DATA_CONVERTER,
    ).replay_workflow(history)


def test_histories_of_each_long_running_workflow_are_kept():
    names = {p.stem for p in HISTORIES.glob("*.json")}
    assert {
        "housekeeping_happy_path",
        "housekeeping_reassigned",
        "journey_whole_stay",
        # Recorded before the router recorded its plan: the patched router's old branch.
        "router_checked_in_before_plan",
        "router_waiting_for_reaction",
        "router_across_a_deploy",
        "journey_waiting_for_arrival",
        "journey_cancelled_before_arrival",
        "journey_held_for_quiet_hours",
        "journey_continued_as_new",
        "housekeeping_escalated_waiting",
        "housekeeping_cancelled_mid_wait",
        "journey_guest_from_profile",
        # A router whose plan forwards to a target, and the Forward executions.
        "router_signed",
        "forward_signed",
        "forward_retried",
        "housekeeping_cancel_kept_a_manual_reassignment",
        "housekeeping_lost_pms_answer_undone",
        "housekeeping_failed_undo_reported",
        "housekeeping_cancelled_through_temporal",
        "housekeeping_reservation_from_update",
        "journey_send_tried_again",
        "journey_send_dropped_while_retried",
        "journey_send_failed_with_alert",
        "journey_policy_refreshed",
        # A journey that took a profile change (and carries its ProfileId).
        "journey_profile_refreshed",
        # Routers that ran a journey delivery themselves (an activity).
        "router_delivered_by_activity_waiting",
        "router_delivered_by_activity",
        # Routers that ran the welcome email themselves (an activity).
        "router_welcome_in_router_waiting",
        "router_welcome_in_router",
    } <= names


def test_the_corpus_holds_executions_still_waiting():
    def is_open(path):
        history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
        return history.events[-1].event_type not in CLOSING

    open_ones = {p.stem for p in HISTORIES.glob("*.json") if is_open(p)}
    assert {
        "router_waiting_for_reaction",
        "router_delivered_by_activity_waiting",
        "journey_waiting_for_arrival",
        "journey_held_for_quiet_hours",
        "journey_continued_as_new",
        "housekeeping_escalated_waiting",
    } <= open_ones


def test_the_corpus_holds_a_journey_restored_after_continue_as_new():
    path = HISTORIES / "journey_continued_as_new.json"
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id
