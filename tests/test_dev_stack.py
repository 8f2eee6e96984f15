"""`reactor dev` on other ports: every command and link follows it without an export, and
everything it writes lands in its data directory."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import SECRET

ROOT = Path(__file__).resolve().parent.parent


def free_ports(count: int) -> list[int]:
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(p.getsockname()[1]) for p in probes]
    finally:
        for probe in probes:
            probe.close()


def reactor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_for(check, what: str, proc: subprocess.Popen[bytes], tries: int = 600):
    for _ in range(tries):
        assert proc.poll() is None, f"reactor dev exited before {what}"
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"never: {what}")


def start_dev(
    tmp_path: Path, *options: str, secret: str | None = SECRET
) -> tuple[subprocess.Popen[bytes], dict[str, str], list[int], Path, Path]:
    """`reactor dev` on free ports, writing in tmp_path: (process, env, [api, grpc, ui]
    ports, data directory, stack file). ``secret`` None: no WEBHOOK_SECRET anywhere."""
    api, grpc, ui = ports = free_ports(3)
    data = tmp_path / "data"
    stack_file = tmp_path / "dev-stack.json"
    # No TEMPORAL_* and no key in the environment: only what reactor dev recorded.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TEMPORAL_", "REACTOR_"))
    }
    env.pop("WEBHOOK_SECRET", None)
    env.update(REACTOR_DEV_STACK=str(stack_file), **({"WEBHOOK_SECRET": secret} if secret else {}))
    dev = subprocess.Popen(
        [sys.executable, "-m", "cli", "dev", *options, "--port", str(api)]
        + ["--temporal-port", str(grpc), "--ui-port", str(ui), "--data-dir", str(data)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return dev, env, ports, data, stack_file


def test_after_reactor_dev_on_other_ports_every_command_follows_it(tmp_path):
    # What the checkout's own var/ holds before: the stack writes nothing there.
    before = written_in(ROOT / "var")
    dev, env, (api, grpc, ui), data, stack_file = start_dev(tmp_path)
    try:
        stack = json.loads(
            wait_for(lambda: stack_file.exists() and stack_file.read_text(), "the stack", dev)
        )
        sent = reactor(env, "send", "--topic", "RESERVATION_CREATED")
        assert sent.returncode == 0, sent.stderr
        event_id = re.search(r"event (\S+)", sent.stdout)[1]
        assert f"http://127.0.0.1:{ui}/namespaces/default/workflows/{event_id}" in sent.stdout

        def routed():
            status = reactor(env, "status", event_id, "--json")
            assert status.returncode == 0, status.stderr
            found = json.loads(status.stdout)
            return found if found["status"] == "COMPLETED" else None

        found = wait_for(routed, "the router completed", dev, tries=100)
        emails = wait_for(lambda: list((data / "outbox").glob("*.eml")), "the email", dev)
        failed = reactor(env, "failed", "--since", "1h")
        unknown = reactor(env, "send", "--topic", "NOT_A_TOPIC")
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=90)

    assert stack["api_url"] == f"http://127.0.0.1:{api}"
    assert stack["temporal_address"] == f"127.0.0.1:{grpc}"
    assert stack["ui_url"] == f"http://127.0.0.1:{ui}"
    assert found["link"].startswith(f"http://127.0.0.1:{ui}/")
    assert emails and emails[0].parent == data / "outbox"
    assert failed.returncode == 0, failed.stderr
    assert f"http://127.0.0.1:{ui}/namespaces/default/workflows?query=" in failed.stdout
    assert unknown.returncode == 2 and "not a documented topic" in unknown.stderr
    # Everything the stack wrote is in its data directory; its record is gone.
    assert {"temporal.db", "temporal.log", "intake.db", "dev-encryption-keys", "outbox"} <= {
        p.name for p in data.iterdir()
    }
    assert not stack_file.exists()
    assert not (ROOT / "var" / "outbox" / emails[0].name).exists()
    assert written_in(ROOT / "var") == before
    # The API's and the worker's logs too (they are also shown in the terminal).
    api_log = (data / "api.log").read_text()
    worker_log = (data / "worker.log").read_text()
    assert f"event_id={event_id}" in api_log and "outcome=accepted" in api_log
    assert "worker started" in worker_log and "worker stopped" in worker_log
    # Without --sqlite-wal, the dev server keeps SQLite's rollback journal.
    assert journal_mode(data / "temporal.db") == "delete"


def written_in(folder: Path) -> dict[str, int]:
    """Each file under ``folder`` with the time it was last written."""
    if not folder.is_dir():
        return {}
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def journal_mode(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def test_reactor_dev_sqlite_wal_puts_the_dev_servers_file_in_wal_mode(tmp_path):
    # Also: with no WEBHOOK_SECRET set, the secret reactor dev generates is kept in its
    # data directory, where `reactor send` finds it with no export.
    dev, env, _, data, stack_file = start_dev(tmp_path, "--sqlite-wal", secret=None)
    try:
        wait_for(lambda: stack_file.exists(), "the stack", dev)
        sent = reactor(env, "send", "--topic", "RESERVATION_CREATED", "--json")
        assert sent.returncode == 0, sent.stderr
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=90)
    # The mode is kept in the file: it is what the server wrote with.
    assert journal_mode(data / "temporal.db") == "wal"
    assert "WEBHOOK_SECRET" not in env
    assert json.loads(sent.stdout)["status"] == "accepted"
    secret_file = data / "dev-webhook-secret"
    assert len(secret_file.read_text().strip()) >= 32
    assert secret_file.stat().st_mode & 0o777 == 0o600
