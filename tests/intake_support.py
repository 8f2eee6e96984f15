"""Real processes the intake tests stop and kill: a Temporal dev server on a fixed port
and database file, the API as `python -m cli api`, and a PostgreSQL server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from core.settings import Settings
from core.temporal import connect, dev_server_search_attribute_args
from storage.db import open_engine
from storage.intake import IntakeQueue
from tests.conftest import temporal_cli
from tests.helpers import SECRET, make_settings, polls, until

ROOT = Path(__file__).resolve().parent.parent
# The publisher gives up after 5 s: a protocol limit, not a speed goal.
PUBLISHER_TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DevServer:
    """`temporal server start-dev` on a fixed port and SQLite file, so a restart finds the
    executions the killed server held."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.db = folder / "temporal.db"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        command = [
            temporal_cli(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db-filename",
            str(self.db),
            "--log-level",
            "error",
            *dev_server_search_attribute_args(),
        ]
        self.process = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        settings = make_settings(self.db.parent, TEMPORAL_ADDRESS=self.address)

        async def answers() -> bool:
            try:
                client = await connect(settings)
                return bool(await client.service_client.check_health())
            except Exception:  # noqa: BLE001 - not up yet
                return False

        await until(answers, "the dev server answers")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.process = None


def api_env(settings: Settings, **more: str) -> dict[str, str]:
    """The environment of an ApiProcess that uses ``settings``' Temporal, task queue and
    store."""
    return {
        "WEBHOOK_SECRET": SECRET,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "REACTOR_TASK_QUEUE": settings.task_queue,
        "INTAKE_DATABASE_URL": settings.intake_database_url,
        "LOG_LEVEL": "WARNING",
        **more,
    }


class ApiProcess:
    """The API as deployed: `python -m cli api`, connecting to Temporal itself."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.env = env
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [sys.executable, "-m", "cli", "api", "--port", str(self.port), *self.args],
            env=env,
            cwd=self.env.get("REACTOR_TEST_CWD", str(ROOT)),
            stdout=subprocess.DEVNULL,
            # A group of its own: kill() takes its worker processes (--workers N) too.
            start_new_session=True,
        )

        async def alive() -> bool:
            assert self.process is not None and self.process.poll() is None, "the API exited"
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"{self.url}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await until(alive, "the API answers /healthz")

    def kill(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None


async def post(http: httpx.AsyncClient, url: str, event: dict) -> tuple[httpx.Response, float]:
    started = asyncio.get_running_loop().time()
    response = await http.post(
        f"{url}/webhooks/likemagic", json=event, headers={"lm-webhook-secret": SECRET}
    )
    return response, asyncio.get_running_loop().time() - started


async def queue_depth(url: str) -> int:
    engine = await open_engine(url, migrate_schema=False)
    try:
        return (await IntakeQueue(engine).stats()).depth
    finally:
        await engine.dispose()


async def routers(client: Client, task_queue: str, expected: Iterable[str] = ()) -> Counter[str]:
    """How many EventRouter executions each workflow ID has on ``task_queue``. Visibility
    lags behind the starts (more so on a busy machine): with ``expected``, ask again for
    up to WAIT_SECONDS until every one of those IDs is listed."""
    query = f'WorkflowType = "EventRouter" AND TaskQueue = "{task_queue}"'
    wanted = set(expected)
    counted: Counter[str] = Counter()
    async for _ in polls(pause=0.2):
        counted = Counter([execution.id async for execution in client.list_workflows(query)])
        if wanted <= set(counted):
            break
    return counted


# --- PostgreSQL ----------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


class Postgres:
    """A PostgreSQL server of the tests' own, in a temporary folder, on a free port.
    Run as an unprivileged user (the server refuses root)."""

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            message = "PostgreSQL is not installed (apt-get install postgresql)"
            if os.environ.get("CI") == "true":
                pytest.fail(message + ": CI must install it (.ci/run does)")
            pytest.skip(message)
        self.bin = bin_dir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="reactor-pg-"))
        self.data = self.folder / "data"
        self.user = "nobody" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.folder, self.user)
        self.database = f"intake_{uuid.uuid4().hex[:8]}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.folder)

    @property
    def url(self) -> str:
        role = self.user or os.environ.get("USER", "postgres")
        return f"postgresql+asyncpg://{role}@127.0.0.1:{self.port}/{self.database}"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "--no-sync")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), self.database)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)
