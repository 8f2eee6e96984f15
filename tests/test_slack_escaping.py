"""Guest text reaches Slack as text: no mention, no disguised link, no preview."""

from __future__ import annotations

import json

from activities.slack import mrkdwn
from tests.conftest import sample
from tests.helpers import by_name, running_reactor, unique
from tests.integrations import integrations

CHANNEL_PING = "<!channel>"
DISGUISED_LINK = "<https://evil.example|open the admin console>"


def test_mrkdwn_escapes_what_slack_reads_as_markup():
    assert mrkdwn("Tom & Jerry <!here> <@U1> <https://x.example|y>") == (
        "Tom &amp; Jerry &lt;!here&gt; &lt;@U1&gt; &lt;https://x.example|y&gt;"
    )


async def post_and_route(temporal_env, tmp_path, fakes, event):
    settings = {
        **fakes.settings(),
        "REACTOR_DISABLED_REACTIONS": "housekeeping,guest-journey,activity-log",
    }
    async with running_reactor(temporal_env.client, tmp_path, **settings) as reactor:
        assert (await reactor.post(event)).json()["status"] == "accepted"
        return by_name(await reactor.routed(event["id"]))


async def test_a_guest_message_reaches_slack_escaped(temporal_env, tmp_path):
    event = unique(sample("message_received"))
    event["context"] = {
        **event["context"],
        "guestName": "Eve <@U0ADMIN>",
        "text": f"{CHANNEL_PING} urgent! {DISGUISED_LINK} & more",
    }
    with integrations() as fakes:
        outcomes = await post_and_route(temporal_env, tmp_path, fakes, event)
        [post] = fakes.slack_support.succeeded()
    assert outcomes["support-alert"].status == "done", outcomes
    body = post.json()
    posted = json.dumps(body)
    for markup in (CHANNEL_PING, "<https://evil.example", "<@U0ADMIN>"):
        assert markup not in posted
    assert (
        "&lt;!channel&gt; urgent! &lt;https://evil.example|open the admin console&gt;"
        in (body["text"])
    )
    assert "&amp; more" in body["text"]
    quoted = body["blocks"][0]["text"]["text"]
    assert "*Eve &lt;@U0ADMIN&gt;* wrote" in quoted
    assert "&lt;!channel&gt;" in quoted
    assert body["unfurl_links"] is False and body["unfurl_media"] is False


async def test_a_task_title_reaches_slack_escaped(temporal_env, tmp_path):
    event = unique(sample("task_completed"))
    event["context"] = {**event["context"], "title": f"Clean {CHANNEL_PING} {DISGUISED_LINK}"}
    with integrations() as fakes:
        outcomes = await post_and_route(temporal_env, tmp_path, fakes, event)
        [post] = fakes.slack_ops.succeeded()
    assert outcomes["team-notice"].status == "done", outcomes
    body = post.json()
    assert CHANNEL_PING not in json.dumps(body) and "<https://evil" not in json.dumps(body)
    assert body["text"].startswith("Task done: Clean &lt;!channel&gt; &lt;https://evil.example|")
    assert body["blocks"][0]["text"]["text"].startswith(":white_check_mark: *Clean &lt;!channel")
    assert body["unfurl_links"] is False and body["unfurl_media"] is False
