"""`reactor new reaction`: a new reaction that runs, registered, with its passing test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from cli.common import _fail, app

# The checkout the command writes into (beside cli/).
ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")

new_app = typer.Typer(help="Write the start of something new, ready to run and tested.")
app.add_typer(new_app, name="new")

MODULE = '''"""{name}: reacts to {topic_list}.

Written by `reactor new reaction`; make it yours.
"""

from __future__ import annotations

from temporalio import workflow

from core.events import LikeMagicEvent
from workflows.common import INTEGRATION_CALL, result_of
from workflows.reaction import ReactionResult
{imports}

def message_for(event: LikeMagicEvent) -> str | None:
    """What to tell about this event, or None to let it pass (the reaction is skipped).

    Workflow code: decide from the event only (no I/O, clocks or randomness).
    """
    about = f"{{event.object_type}} {{event.object_id}} at {{event.pms_property_id}}"
    return f"{{event.topic}}: {{about}}"


@workflow.defn
class {cls}:
    """{doc}

    Retries: the integration failure policy (activities/policy.py).
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        text = message_for(event)
        if text is None:
            return ReactionResult.skipped("nothing to tell")
{body}
'''

SLACK_IMPORTS = """
with workflow.unsafe.imports_passed_through():
    from activities.slack import SlackActivities, SlackMessage, mrkdwn
"""
SLACK_BODY = """        # mrkdwn(): text from an event is escaped, so it cannot ping or link.
        message = SlackMessage(channel="operations", text=mrkdwn(text))
        delivery = await workflow.execute_activity_method(
            SlackActivities.post_slack, message, **INTEGRATION_CALL
        )
        return result_of(delivery)"""
PLAIN_BODY = """        # Side effects (email, Slack, HTTP) are activities: see workflows/common.py,
        # INTEGRATION_CALL and result_of, and `reactor new reaction --help`.
        return ReactionResult.done(text)"""

TEST = '''"""{name} on the time-skipping server. Written by `reactor new reaction`."""

from __future__ import annotations

from tests.kit import event, reactor_kit


async def test_{func}(skipping_env, tmp_path):
    sent = event("{topic}")  # the platform's thin shape (examples/events/)
    async with reactor_kit(skipping_env, tmp_path) as kit:
        outcome = await kit.react(sent, "{name}")
    about = f"{{sent['objectType']}} {{sent['objectId']}} at {{sent['pmsPropertyId']}}"
    expected = f"{topic}: {{about}}"
    assert outcome.status == "done", outcome.detail
{check}
'''
SLACK_CHECK = "    assert kit.slack() == [expected]"
PLAIN_CHECK = "    assert outcome.detail == expected"


def _entry(name: str, cls: str, topics: list[str], slack: bool) -> str:
    lines = [
        "    Reaction(",
        f'        "{name}",',
        f"        {cls},",
        "        topics=frozenset({" + ", ".join(f"Topic.{t}" for t in topics) + "}),",
    ]
    if slack:
        lines += [
            "        activities=(SlackActivities,),",
            '        requires=("slack_operations",),',
        ]
    return "\n".join([*lines, "    ),"]) + "\n"


def register(
    registry: Path, module: str, name: str, cls: str, topics: list[str], slack: bool
) -> None:
    """Add the import and the REACTIONS entry to workflows/registry.py."""
    text = registry.read_text()
    line = f"from workflows.{module} import {cls}\n"
    imports = list(re.finditer(r"^from workflows\.(\S+) import .+\n", text, flags=re.MULTILINE))
    # Where isort puts it: before the first workflows import that sorts after it.
    later = [m for m in imports if m[1] > module]
    at = later[0].start() if later else imports[-1].end()
    text = text[:at] + line + text[at:]
    end = re.search(
        r"^REACTIONS: list\[Reaction\] = \[\n(.*?)^\]\n", text, re.DOTALL | re.MULTILINE
    )
    if end is None:
        raise ValueError(f"{registry}: no REACTIONS list to add to")
    close = end.end() - 2
    text = text[:close] + _entry(name, cls, topics, slack) + text[close:]
    registry.write_text(text)


@new_app.command()
def reaction(
    name: Annotated[str, typer.Argument(help="The reaction's name, kebab-case: condition-alert.")],
    topic: Annotated[list[str], typer.Option(help="A topic it reacts to (repeat for several).")],
    slack: Annotated[
        bool, typer.Option("--slack", help="Post to the operations Slack channel.")
    ] = False,
) -> None:
    """Write workflows/NAME.py, register it in workflows/registry.py, and write
    tests/test_NAME.py, which passes on the time-skipping server as written."""
    from core.events import Topic, normalize_topic
    from workflows.registry import REACTIONS

    if not NAME.fullmatch(name):
        _fail(
            "new reaction",
            f"{name!r}: use lower-case words joined by -, such as condition-alert",
            2,
        )
    topics = [normalize_topic(t.strip().upper()) for t in topic]
    unknown = [t for t in topics if t not in Topic.__members__]
    if unknown:
        _fail("new reaction", f"not a documented topic: {', '.join(unknown)}", 2)
    module = name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-"))
    paths = {
        "module": ROOT / "workflows" / f"{module}.py",
        "test": ROOT / "tests" / f"test_{module}.py",
    }
    taken = [str(p.relative_to(ROOT)) for p in paths.values() if p.exists()]
    if taken or any(r.name == name for r in REACTIONS):
        _fail("new reaction", f"{name} exists already ({', '.join(taken) or 'in the registry'})", 1)
    topic_list = ", ".join(topics)
    doc = f"Tells operations on Slack about {topic_list}." if slack else f"Reacts to {topic_list}."
    paths["module"].write_text(
        MODULE.format(
            name=name,
            topic_list=topic_list,
            cls=cls,
            doc=doc,
            imports=SLACK_IMPORTS if slack else "",
            body=SLACK_BODY if slack else PLAIN_BODY,
        )
    )
    paths["test"].write_text(
        TEST.format(
            name=name,
            func=module,
            topic=topics[0],
            check=SLACK_CHECK if slack else PLAIN_CHECK,
        )
    )
    register(ROOT / "workflows" / "registry.py", module, name, cls, topics, slack)
    for written in ("workflows/registry.py", *(str(p.relative_to(ROOT)) for p in paths.values())):
        typer.echo(f"wrote {written}")
    typer.echo(f"next: .venv/bin/pytest tests/test_{module}.py, then make run")
