"""A reaction's own endpoint (`reactor new reaction --http`): the failure policy, the
idempotency key, and the skip while REACTION_URL_<REACTION> is unset."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.config import ConfigActivities
from activities.endpoints import EndpointActivities, EndpointCall
from activities.policy import INTEGRATION_REJECTED
from core.events import Topic
from tests.fakes import FakeService, Reply
from tests.helpers import make_settings
from workflows.reaction import Reaction, skip_reason
from workflows.welcome_email import WelcomeEmail

CALL = EndpointCall(reaction="task-hook", event_id="ev-1", body={"text": "Room 412"})


async def post(tmp_path, **settings) -> object:
    activities = EndpointActivities(make_settings(tmp_path, **settings))
    return await ActivityEnvironment().run(activities.post_endpoint, CALL)


async def test_the_call_is_a_json_post_keyed_by_the_event_and_safe_to_repeat(tmp_path):
    with FakeService(Reply(200, {"ok": True})) as endpoint:
        url = f"{endpoint.url}/hooks/task"
        first = await post(tmp_path, REACTION_URL_TASK_HOOK=url)
        again = await post(tmp_path, REACTION_URL_TASK_HOOK=url)
    assert first == again
    assert first.status == "sent" and first.detail == "task-hook endpoint answered 200"
    assert [(r.method, r.path, r.json()) for r in endpoint.requests] == [
        ("POST", "/hooks/task", {"text": "Room 412"})
    ] * 2
    # A repeat carries the same key: the endpoint can tell it from a new call.
    assert {r.header("Idempotency-Key") for r in endpoint.requests} == {"likemagic-ev-1"}


@pytest.mark.parametrize(
    ("status", "retried"), [(500, True), (503, True), (429, True), (400, False), (404, False)]
)
async def test_the_failure_policy_of_every_integration(tmp_path, status, retried):
    with FakeService(Reply(status, {"error": "no such room Room 412"})) as endpoint:
        with pytest.raises(ApplicationError) as raised:
            await post(tmp_path, REACTION_URL_TASK_HOOK=f"{endpoint.url}/hook")
    assert raised.value.non_retryable is not retried
    assert (raised.value.type == INTEGRATION_REJECTED) is not retried
    assert "the task-hook endpoint" in raised.value.message
    assert "Room 412" not in raised.value.message  # what the call carried stays out


async def test_an_unreachable_endpoint_is_retried(tmp_path):
    with FakeService() as endpoint:
        url = endpoint.url
    with pytest.raises(ApplicationError) as raised:
        await post(tmp_path, REACTION_URL_TASK_HOOK=f"{url}/gone")
    assert not raised.value.non_retryable and "unreachable" in raised.value.message


async def test_unset_the_call_is_skipped_and_the_router_names_the_variable(tmp_path):
    skipped = await post(tmp_path)
    assert skipped.status == "skipped"
    assert skipped.detail == "REACTION_URL_TASK_HOOK is not set"
    hook = Reaction(
        "task-hook",
        WelcomeEmail,
        topics=frozenset({Topic.TASK_CREATED}),
        requires=("endpoint:task-hook",),
    )
    unset = await ConfigActivities(make_settings(tmp_path)).reactor_config()
    given = await ConfigActivities(
        make_settings(tmp_path, REACTION_URL_TASK_HOOK="http://127.0.0.1:9/hook")
    ).reactor_config()
    assert skip_reason(hook, unset) == "not configured: set REACTION_URL_TASK_HOOK"
    assert skip_reason(hook, given) is None
