"""Team notice in the operations channel when a task is completed."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from core.events import LikeMagicEvent
from workflows.common import INTEGRATION_CALL, instant, nested, result_of, text
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.slack import SlackActivities, SlackMessage, facts, mrkdwn, section
    from activities.teams import TeamsNotice, notice_facts
    from activities.temporal import AssignmentRecord, FindEvent, TemporalActivities


def duration_text(took: timedelta) -> str:
    minutes = int(took.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def unit_of(event: LikeMagicEvent) -> str | None:
    units = nested(event.context, "links", "pmsUnitIds")
    first_unit = units[0] if isinstance(units, list) and units else None
    return text(event.context.get("unitId")) or text(first_unit)


def notice(
    completed: LikeMagicEvent,
    created: LikeMagicEvent | None,
    assignment: AssignmentRecord | None = None,
    workflow_id: str | None = None,
) -> SlackMessage:
    ctx = completed.context
    title = text(ctx.get("title")) or (text(created.context.get("title")) if created else None)
    task_type = text(ctx.get("type")) or (text(created.context.get("type")) if created else None)
    unit = unit_of(completed) or (unit_of(created) if created else None)
    who = text(completed.actor_id)
    took = None
    done_at = instant(completed.timestamp)
    created_at = instant(created.timestamp) if created else None
    if done_at and created_at and done_at >= created_at:
        took = duration_text(done_at - created_at)
    name = title or task_type or completed.object_id or "a task"
    summary = f"Task done: {name}"
    if unit:
        summary += f" (unit {unit})"
    if who:
        summary += f" by {who}"
    if took:
        summary += f" in {took}"
    assigned = assignment.assignee_name or assignment.assignee_id if assignment else None
    if assigned and assignment and assignment.assignee_id != who:
        summary += f" (assigned to {assigned})"
    shown: list[tuple[str, str | None]] = [
        ("Unit", unit),
        ("Done by", who),
        ("Assigned to", assigned),
        ("Took", took),
        ("Type", task_type),
        ("Property", completed.pms_property_id),
        ("Task", completed.object_id),
    ]
    blocks = [section(f":white_check_mark: *{mrkdwn(name)}* is done"), facts(shown)]
    card = TeamsNotice(
        title=f"{name} is done",
        facts=notice_facts(shown),
        workflow_id=workflow_id,
    )
    return SlackMessage(channel="operations", text=mrkdwn(summary), blocks=blocks, card=card)


@workflow.defn
class TeamNotice:
    """Posts a notice to the operations Slack channel on TASK_COMPLETED: the task,
    its unit, who completed it and how long it took.

    "How long" is measured from the task's TASK_CREATED event, which it looks up
    in Temporal's own visibility store (none found: the notice says nothing of
    time); who the task was assigned to comes from the task's housekeeping
    assignment, when it has one. Without SLACK_WEBHOOK_URL it is skipped. The post follows the
    integration failure policy. Nothing to compensate.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        created = assignment = None
        if event.object_id:
            created = await workflow.execute_activity_method(
                TemporalActivities.find_event,
                FindEvent(object_id=event.object_id, topic="TASK_CREATED"),
                **INTEGRATION_CALL,
            )
            assignment = await workflow.execute_activity_method(
                TemporalActivities.assignment_record, event.object_id, **INTEGRATION_CALL
            )
        delivery = await workflow.execute_activity_method(
            SlackActivities.post_slack,
            notice(event, created, assignment, workflow.info().workflow_id),
            **INTEGRATION_CALL,
        )
        return result_of(delivery)
