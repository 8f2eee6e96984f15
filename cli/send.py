"""`reactor send`: post an event (a file, stdin, or a sample) to the webhook."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    pass


from cli.common import (
    DEFAULT_API_URL,
    DEFAULT_SAMPLE,
    CommandError,
    JsonOption,
    _echo_json,
    _fail,
    _load,
    _one_line,
    api_url,
    app,
)
from core.examples import EXAMPLES

# --- send --------------------------------------------------------------------------------


def _sample_event(topic: str | None, object_id: str | None) -> dict[str, Any]:
    """A sample of examples/events/ for the topic (else the check-in sample, retitled),
    with a fresh id."""
    samples = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]
    if not samples:
        raise CommandError(f"no sample events in {EXAMPLES}", 2)
    chosen = next((s for s in samples if topic and s.get("topic") == topic), None)
    if chosen is None:
        default = EXAMPLES / DEFAULT_SAMPLE
        chosen = json.loads(default.read_text()) if default.exists() else samples[0]
    event = {**chosen, "id": str(uuid.uuid4())}
    if topic:
        event["topic"] = topic
    if object_id:
        event["objectId"] = object_id
    return event


def _known_topic(topic: str | None, force: bool) -> None:
    """Refuse a topic the platform does not document, unless --force says it is meant."""
    from core.events import Topic, normalize_topic

    if topic is None or force or normalize_topic(topic) in Topic.__members__:
        return
    close = [t.value for t in Topic if topic.upper() in t.value][:5]
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise CommandError(
        f"--topic {topic!r} is not a documented topic{hint}; --force sends it as it is, "
        "as a sample event under that topic",
        2,
    )


def _event_body(file: str | None, topic: str | None, object_id: str | None) -> bytes:
    if file is not None and (topic or object_id):
        raise CommandError("give an event FILE (or -), or --topic/--object-id, not both", 2)
    if file == "-":
        return sys.stdin.buffer.read()
    if file is not None:
        try:
            return Path(file).read_bytes()
        except OSError as err:
            raise CommandError(f"cannot read {file}: {err.strerror}", 2) from None
    if not (topic or object_id):
        raise CommandError("give an event FILE, - for stdin, or --topic/--object-id", 2)
    return json.dumps(_sample_event(topic, object_id)).encode()


@app.command()
def send(
    file: Annotated[
        str | None, typer.Argument(help="Event JSON file, or - for standard input.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            envvar="REACTOR_API_URL",
            help="Base URL of the reactor API; default: the running `reactor dev`'s, else "
            f"{DEFAULT_API_URL}.",
            show_default=False,
        ),
    ] = None,
    secret: Annotated[
        str | None, typer.Option(help="The webhook secret; default: WEBHOOK_SECRET.")
    ] = None,
    topic: Annotated[
        str | None,
        typer.Option(help="Send a sample event of this topic (a documented one), with a fresh id."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Send --topic even when it is not a documented topic.")
    ] = False,
    object_id: Annotated[
        str | None, typer.Option(help="Send a sample event about this object, fresh id.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 10.0,
    as_json: JsonOption = False,
) -> None:
    """POST an event to a running API's webhook, as LIKE MAGIC would, and print the answer."""
    import httpx

    from core.links import workflow_url

    try:
        _known_topic(topic, force)
        body = _event_body(file, topic, object_id)
    except CommandError as err:
        _fail("send", str(err), err.status)
    settings = _load("send")
    url = api_url(url)
    if secret is None:
        secrets_ = settings.webhook_secrets()
        if not secrets_:
            _fail("send", "no webhook secret: set WEBHOOK_SECRET (or .env), or pass --secret", 2)
        secret = secrets_[0].decode()
    endpoint = f"{url.rstrip('/')}/webhooks/likemagic"
    headers = {"content-type": "application/json", "lm-webhook-secret": secret}
    try:
        response = httpx.post(endpoint, content=body, headers=headers, timeout=timeout)
    except httpx.InvalidURL as err:
        _fail("send", f"--url {url!r} is not a usable URL: {err}", 2)
    except httpx.TransportError as err:
        reason = _one_line(str(err)) or type(err).__name__
        _fail("send", f"cannot reach the API at {url}: {reason}", 2)
    try:
        answer: Any = response.json()
    except ValueError:
        answer = {"error": {"code": "not_json", "message": _one_line(response.text)}}
    if response.status_code != 200:
        typer.echo(json.dumps(answer, ensure_ascii=False))
        typer.echo(f"reactor send: the API answered {response.status_code}", err=True)
        raise typer.Exit(1)
    if as_json:
        _echo_json(answer)
        return
    typer.echo(f"{answer.get('status')}  event {answer.get('eventId')}  run {answer.get('runId')}")
    workflow_id = answer.get("workflowId")
    if workflow_id:
        link = workflow_url(settings.temporal_ui_url, settings.temporal_namespace, workflow_id)
        typer.echo(f"  {link}")
