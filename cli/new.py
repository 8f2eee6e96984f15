"""`reactor new reaction`: a new reaction that runs, registered, with its passing test."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
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
{imports}

def message_for(event: LikeMagicEvent) -> str | None:
    """What to tell about this event, or None to let it pass (the reaction is skipped).

    Workflow code: decide from the event only (no I/O, clocks or randomness).
    """
    about = f"{{event.object_type}} {{event.object_id}} at {{event.pms_property_id}}"
    return f"[{name}] {{event.topic}}: {{about}}"
{helpers}

@workflow.defn
class {cls}:
    {doc}

    Retries: the integration failure policy (activities/policy.py).{order}
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        text = message_for(event)
        if text is None:
            return ReactionResult.skipped("nothing to tell")
{body}
'''

PLAIN_BODY = """        # Side effects (email, Slack, HTTP) are activities: see workflows/common.py,
        # INTEGRATION_CALL and results_of, and `reactor new reaction --help`.
        return ReactionResult.done(text)"""

ORDER = """ The calls go one
    after the other; one that fails for good fails the reaction, and the later ones
    are not made."""


class Part:
    """What one integration adds: imports, workflow code, a docstring clause, the test's
    check, its activity class (registered with the reaction) and the integration whose
    configuration the router requires (None: always configured)."""

    def __init__(
        self,
        *,
        passed: str,
        body: str,
        doc: str,
        check: str,
        activity_class: str,
        requires: str | None,
        workflows: str = "",
        helpers: str = "",
    ) -> None:
        self.passed = passed
        self.body = body
        self.doc = doc
        self.check = check
        self.activity_class = activity_class
        self.activity_module = passed.split()[1]
        self.requires = requires
        self.workflows = workflows
        self.helpers = helpers


EMAIL = Part(
    workflows="from workflows.guest import find_guest",
    passed="from activities.email import EmailActivities, EmailRequest",
    helpers='''

def reservation_of(event: LikeMagicEvent) -> str | None:
    """The reservation the event is about: its object, else the one its context names."""
    if event.object_type == "RESERVATION":
        return event.object_id
    named = event.context.get("reservationId")
    return named if isinstance(named, str) else None
''',
    body="""        # The guest: the event, else the reservation's journey, else the LIKE MAGIC
        # profile (workflows/guest.py); with none of them, the email is skipped.
        found = await find_guest(event, reservation_of(event))
        if found.guest is None:
            deliveries.append(Delivery.skipped(found.why_not("recipient")))
        else:
            email = EmailRequest(
                key=workflow.info().workflow_id,
                kind="{kind}",
                to=found.guest.email,
                language=found.guest.language,
                data={{
                    "guest_name": found.guest.name,
                    "text": text,
                    "property_id": event.pms_property_id,
                    "reservation_id": reservation_of(event),
                }},
            )
            deliveries.append(
                await workflow.execute_activity_method(
                    EmailActivities.send_email, email, **INTEGRATION_CALL
                )
            )""",
    doc="emails it to the guest, in the guest's language (the `{kind}` templates in "
    "activities/templates/email/<language>/, or SendGrid's with "
    "SENDGRID_TEMPLATE_{variable}[_<LANG>])",
    check="""    # SendGrid's recording fake: this reaction's one email, to the guest, saying it.
    [email] = [e for e in kit.emails() if e["key"] == outcome.workflow_id]
    assert email["to"] == GUEST["email"] and expected in email["text"]""",
    activity_class="EmailActivities",
    requires=None,  # without SendGrid, the outbox
)
SLACK = Part(
    passed="from activities.slack import SlackActivities, SlackMessage, mrkdwn",
    body="""        # mrkdwn(): text from an event is escaped, so it cannot ping or link.
        message = SlackMessage(channel="operations", text=mrkdwn(text))
        deliveries.append(
            await workflow.execute_activity_method(
                SlackActivities.post_slack, message, **INTEGRATION_CALL
            )
        )""",
    doc="posts it to the operations channel on Slack",
    # Once among the channel's messages (other reactions to the topic may post too).
    check="    assert kit.slack().count(expected) == 1",
    activity_class="SlackActivities",
    requires="slack_operations",
)
HTTP = Part(
    passed="from activities.endpoints import EndpointActivities, EndpointCall",
    body="""        # The event's id is the call's idempotency key: a retry is recognised.
        call = EndpointCall(
            reaction="{name}",
            event_id=event.id,
            body={{"eventId": event.id, "topic": event.topic, "text": text}},
        )
        deliveries.append(
            await workflow.execute_activity_method(
                EndpointActivities.post_endpoint, call, **INTEGRATION_CALL
            )
        )""",
    doc="POSTs it to its endpoint, REACTION_URL_{variable}",
    check="""    # The kit's recording endpoint: one POST, keyed by the event's id.
    [call] = kit.calls("{name}")
    assert call.json() == {{
        "eventId": sent["id"],
        "topic": "{topic}",
        "text": expected,
    }}
    assert call.header("Idempotency-Key") == f"likemagic-{{sent['id']}}\"""",
    activity_class="EndpointActivities",
    requires="endpoint:{name}",
)
# In the order the reaction makes its calls.
PARTS = {"email": EMAIL, "slack": SLACK, "http": HTTP}

TEST = '''"""{name} on the time-skipping server. Written by `reactor new reaction`."""

from __future__ import annotations

from tests.kit import event, reactor_kit
{guest}

async def test_{func}(skipping_env, tmp_path):
    {sent}
    async with reactor_kit(skipping_env, tmp_path) as kit:
        outcome = await kit.react(sent, "{name}")
    about = f"{{sent['objectType']}} {{sent['objectId']}} at {{sent['pmsPropertyId']}}"
    expected = f"[{name}] {topic}: {{about}}"
    assert outcome.status == "done", outcome.detail
{checks}
'''
PLAIN_CHECK = "    assert outcome.detail == expected"
PLAIN_SENT = 'sent = event("{topic}")  # the platform\'s thin shape (examples/events/)'
GUEST_SENT = 'sent = event("{topic}", context={{"primaryGuest": GUEST}})'
GUEST = """
# A guest as RESERVATION_CREATED's primaryGuest names one. Most topics name none: the
# reaction then asks the reservation's journey, then the guest's LIKE MAGIC profile.
GUEST = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@guest.example"}
"""

# An email kind's words in every language that ships: subject, greeting, regards.
EMAIL_WORDS = {
    "en": (
        "News about your stay{% if property_name %} at {{ property_name }}{% endif %}",
        "Hello{% if guest_name %} {{ guest_name }}{% endif %},",
        "Kind regards{% if property_name %}, {{ property_name }}{% endif %}",
    ),
    "de": (
        "Neuigkeiten zu Ihrem Aufenthalt{% if property_name %} im {{ property_name }}{% endif %}",
        "Hallo{% if guest_name %} {{ guest_name }}{% endif %},",
        "Freundliche Grüße{% if property_name %}, {{ property_name }}{% endif %}",
    ),
    "fr": (
        "Du nouveau sur votre séjour{% if property_name %} à {{ property_name }}{% endif %}",
        "Bonjour{% if guest_name %} {{ guest_name }}{% endif %},",
        "Cordialement{% if property_name %}, {{ property_name }}{% endif %}",
    ),
    "it": (
        "Novità sul Suo soggiorno{% if property_name %} a {{ property_name }}{% endif %}",
        "Buongiorno{% if guest_name %} {{ guest_name }}{% endif %},",
        "Cordiali saluti{% if property_name %}, {{ property_name }}{% endif %}",
    ),
}


def email_templates(kind: str) -> dict[str, str]:
    """``<language>/<kind>.subject.txt``, ``.txt`` and ``.html`` of every shipped language:
    the greeting, what the reaction tells (``text``), the property's regards."""
    files = {}
    for language, (subject, greeting, regards) in EMAIL_WORDS.items():
        said = "{{ text }}"
        files[f"{language}/{kind}.subject.txt"] = subject + "\n"
        files[f"{language}/{kind}.txt"] = f"{greeting}\n\n{said}\n\n{regards}\n"
        files[f"{language}/{kind}.html"] = (
            f"<html><body>\n<p>{greeting}</p>\n<p>{said}</p>\n<p>{regards}</p>\n</body></html>\n"
        )
    return files


def module_code(name: str, cls: str, topics: list[str], parts: list[Part]) -> str:
    """The workflow module of a reaction making these calls (none: it only reports)."""
    module = name.replace("-", "_")
    values = {"name": name, "kind": module, "variable": module.upper()}
    lines = [
        *(["from workflows.common import INTEGRATION_CALL, results_of"] if parts else []),
        *(p.workflows for p in parts if p.workflows),
        "from workflows.reaction import ReactionResult",
    ]
    if parts:
        passed = sorted([*(p.passed for p in parts), "from activities.policy import Delivery"])
        lines += ["", "with workflow.unsafe.imports_passed_through():"]
        lines += [f"    {line}" for line in passed]
    topic_list = ", ".join(topics)
    if parts:
        said = ", ".join(p.doc.format(**values) for p in parts)
        doc = f"On {topic_list}: tells what ``message_for`` says; {said}."
        body = "\n".join(
            [
                "        deliveries: list[Delivery] = []",
                *(p.body.format(**values) for p in parts),
                "        return results_of(deliveries)",
            ]
        )
    else:
        doc = f"Reacts to {topic_list}: reports what ``message_for`` says."
        body = PLAIN_BODY
    return MODULE.format(
        name=name,
        topic_list=topic_list,
        cls=cls,
        doc=textwrap.fill(f'"""{doc}', width=96, subsequent_indent="    ", break_on_hyphens=False),
        order=ORDER if len(parts) > 1 else "",
        imports="\n".join(lines) + "\n",
        helpers="".join(p.helpers for p in parts),
        body=body,
    )


def test_code(name: str, topic: str, parts: list[Part]) -> str:
    values = {"name": name, "topic": topic}
    guest = EMAIL in parts
    return TEST.format(
        name=name,
        func=name.replace("-", "_"),
        topic=topic,
        guest=GUEST if guest else "",
        sent=(GUEST_SENT if guest else PLAIN_SENT).format(topic=topic),
        checks="\n".join(p.check.format(**values) for p in parts) or PLAIN_CHECK,
    )


def _entry(name: str, cls: str, topics: list[str], parts: list[Part]) -> str:
    lines = ["    Reaction(", f'        "{name}",', f"        {cls},"]
    members = ", ".join(f"Topic.{t}" for t in topics)
    if len(members) <= 100 - len("        topics=frozenset({}),"):
        lines.append(f"        topics=frozenset({{{members}}}),")
    else:  # laid out as ruff format lays it out
        listed = [f"                Topic.{t}," for t in topics]
        lines += [
            "        topics=frozenset(",
            "            {",
            *listed,
            "            }",
            "        ),",
        ]
    if parts:
        lookups = "GUEST_LOOKUPS + " if EMAIL in parts else ""
        lines.append(f"        activities={lookups}{_tuple(p.activity_class for p in parts)},")
    # The router skips it, with the reason, while none of its calls is configured.
    needs = [p.requires.format(name=name) if p.requires else None for p in parts]
    if needs and None not in needs:
        lines.append(f"        requires={_tuple(f'{chr(34)}{n}{chr(34)}' for n in needs)},")
    return "\n".join([*lines, "    ),"]) + "\n"


def _tuple(items: Iterable[str]) -> str:
    """A tuple's source as ruff format writes it: ``(a,)``, ``(a, b)``."""
    listed = list(items)
    return f"({listed[0]},)" if len(listed) == 1 else f"({', '.join(listed)})"


def _add_import(text: str, module: str, name: str) -> str:
    """``from <module> import <name>`` where isort puts it, unless the module is imported."""
    if re.search(rf"^from {re.escape(module)} import ", text, flags=re.MULTILINE):
        return text
    package = module.split(".", 1)[0]
    imports = list(re.finditer(rf"^from ({package}\.\S+) import .+\n", text, flags=re.MULTILINE))
    # Before the first import of the package that sorts after it.
    later = [m for m in imports if m[1] > module]
    at = later[0].start() if later else imports[-1].end()
    return text[:at] + f"from {module} import {name}\n" + text[at:]


def register(
    registry: Path, module: str, name: str, cls: str, topics: list[str], parts: list[Part]
) -> None:
    """Add the imports and the REACTIONS entry to workflows/registry.py."""
    text = _add_import(registry.read_text(), f"workflows.{module}", cls)
    for part in parts:
        text = _add_import(text, part.activity_module, part.activity_class)
    end = re.search(
        r"^REACTIONS: list\[Reaction\] = \[\n(.*?)^\]\n", text, re.DOTALL | re.MULTILINE
    )
    if end is None:
        raise ValueError(f"{registry}: no REACTIONS list to add to")
    close = end.end() - 2
    text = text[:close] + _entry(name, cls, topics, parts) + text[close:]
    registry.write_text(text)


@new_app.command()
def reaction(
    name: Annotated[str, typer.Argument(help="The reaction's name, kebab-case: condition-alert.")],
    topic: Annotated[list[str], typer.Option(help="A topic it reacts to (repeat for several).")],
    email: Annotated[
        bool,
        typer.Option(
            "--email",
            help="Email the guest (found as workflows/guest.py finds guests), with templates "
            "in every shipped language: activities/templates/email/<lang>/condition_alert.* "
            "for condition-alert.",
        ),
    ] = False,
    slack: Annotated[
        bool, typer.Option("--slack", help="Post to the operations Slack channel.")
    ] = False,
    http: Annotated[
        bool,
        typer.Option(
            "--http",
            help="POST JSON to the reaction's endpoint, REACTION_URL_CONDITION_ALERT for "
            "condition-alert (activities/endpoints.py; the event id is the idempotency key).",
        ),
    ] = False,
) -> None:
    """Write workflows/NAME.py, register it in workflows/registry.py, and write
    tests/test_NAME.py, which passes on the time-skipping server as written. Several of
    --email, --slack and --http combine: the calls are made in that order."""
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
    parts = [
        part for wanted, part in zip((email, slack, http), PARTS.values(), strict=True) if wanted
    ]
    module = name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-"))
    files = {
        Path("workflows") / f"{module}.py": module_code(name, cls, topics, parts),
        Path("tests") / f"test_{module}.py": test_code(name, topics[0], parts),
    }
    if EMAIL in parts:
        templates = Path("activities") / "templates" / "email"
        files.update({templates / f: text for f, text in email_templates(module).items()})
    taken = [str(path) for path in files if (ROOT / path).exists()]
    if taken or any(r.name == name for r in REACTIONS):
        _fail("new reaction", f"{name} exists already ({', '.join(taken) or 'in the registry'})", 1)
    for path, text in files.items():
        (ROOT / path).write_text(text)
    register(ROOT / "workflows" / "registry.py", module, name, cls, topics, parts)
    for written in ("workflows/registry.py", *map(str, files)):
        typer.echo(f"wrote {written}")
    typer.echo(f"next: .venv/bin/pytest tests/test_{module}.py, then make run")
