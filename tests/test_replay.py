"""Determinism: the recorded histories of the long-running workflows must replay against
the current workflow code, so a change that breaks running executions fails CI.

Record them again with `REACTOR_RECORD_HISTORIES=1 pytest tests/test_housekeeping.py
tests/test_guest_journey.py` when a change is meant to be incompatible (and version it).
"""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.helpers import HISTORIES
from worker import WORKFLOW_RUNNER
from workflows import registry


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_history_replays(path):
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    await Replayer(
        workflows=registry.workflow_classes(),
        workflow_runner=WORKFLOW_RUNNER,
        data_converter=pydantic_data_converter,
    ).replay_workflow(history)


def test_histories_of_each_long_running_workflow_are_kept():
    names = {p.stem for p in HISTORIES.glob("*.json")}
    assert {
        "housekeeping_happy_path",
        "housekeeping_reassigned",
        "journey_whole_stay",
        "journey_guest_from_profile",
    } <= names
