"""A fuzzer over POST /webhooks/likemagic with a real worker: every answer is 200, a 4xx or
a 503 in the one JSON error shape (never a 500), and every event answered 200 ends in a
completed or a visibly failed router, never one stuck retrying."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from tests.conftest import sample
from tests.helpers import running_reactor

# Known topics start real reactions (journeys, housekeeping, emails to the outbox).
TOPICS = [
    "RESERVATION_CREATED",
    "RESERVATION_CHECKED_IN",
    "TASK_CREATED",
    "PROFILE_UPDATED",
    "MESSAGE_RECEIVED",
    "TEST_FUZZ_TOPIC",
]
SAMPLES = [sample(name) for name in ("reservation_created", "task_created", "message_received")]

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    """Nesting around the limits: the documented one, the worker's decoder's, Python's."""
    levels = draw(st.sampled_from([1, 63, 64, 65, 200, 255, 300, 1500]))
    value: Any = draw(json_leaves)
    for _ in range(levels):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


valid_id = st.builds(lambda: f"fuzz-{uuid.uuid4()}")
ids = st.one_of(
    valid_id,
    st.text(max_size=30),
    st.text(alphabet="abc-._:@0123", min_size=1, max_size=300),
    st.integers(),
    st.none(),
)
field_values = st.one_of(
    st.text(max_size=50), st.text(min_size=190, max_size=3000), st.integers(), json_values
)
objects = st.dictionaries(st.text(max_size=12), st.one_of(json_values, deep()), max_size=4)


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """A real sample event, mostly valid, with some fields replaced, removed or added."""
    event: dict[str, Any] = json.loads(json.dumps(draw(st.sampled_from(SAMPLES))))
    valid = draw(st.booleans())
    event["id"] = draw(valid_id if valid else ids)
    topics = st.sampled_from(TOPICS)
    event["topic"] = draw(topics if valid else st.one_of(topics, st.text(max_size=20)))
    names = ["objectId", "pmsPropertyId", "objectType", "actorId", "timestamp", "eventSource"]
    for name in draw(st.lists(st.sampled_from(names), max_size=2)):
        event[name] = draw(st.text(max_size=60) if valid else field_values)
    context = event.get("context", {})
    event["context"] = draw(
        st.one_of(
            objects.map(lambda extra: {**context, **extra}),
            objects,
            st.none() if valid else st.one_of(json_values, deep()),
        )
    )
    if not valid:
        for name in draw(st.lists(st.sampled_from(["id", "topic", "context"]), max_size=1)):
            event.pop(name, None)
    if draw(st.booleans()):
        event["newField"] = draw(st.one_of(json_values, deep()))
    return json.dumps(event).encode()


bodies = st.one_of(
    envelopes(),
    envelopes(),
    json_values.map(lambda v: json.dumps(v).encode()),
    deep().map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)


async def test_the_webhook_answers_every_input_and_no_accepted_event_gets_stuck(
    temporal_env, tmp_path
):
    loop = asyncio.get_running_loop()
    answered: dict[int, int] = {}
    async with running_reactor(temporal_env.client, tmp_path) as reactor:

        async def check(body: bytes) -> None:
            response = await reactor.post(body, **{"content-type": "application/json"})
            answered[response.status_code] = answered.get(response.status_code, 0) + 1
            status = response.status_code
            assert status == 200 or 400 <= status < 500 or status == 503, (status, body[:300])
            payload = response.json()
            if status != 200:
                assert set(payload) == {"error"}, payload
                assert payload["error"]["code"] and payload["error"]["message"], payload
                return
            assert payload["status"] in ("accepted", "duplicate"), payload
            handle = reactor.router(payload["eventId"])
            try:
                await asyncio.wait_for(handle.result(), timeout=60)
            except WorkflowFailureError:
                pass  # failed visibly: `reactor failed` lists it
            described = await handle.describe()
            assert described.status in (
                WorkflowExecutionStatus.COMPLETED,
                WorkflowExecutionStatus.FAILED,
            ), (described.status, body[:300])

        @settings(
            max_examples=150,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(bodies)
        def every_answer(body: bytes) -> None:
            asyncio.run_coroutine_threadsafe(check(body), loop).result(timeout=120)

        # Hypothesis drives a plain function: run it in a thread, the API and the worker
        # serve from this loop meanwhile.
        await asyncio.to_thread(every_answer)
    print("answers by status:", dict(sorted(answered.items())))
    assert answered.get(200, 0) > 0 and answered.get(422, 0) > 0
