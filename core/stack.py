"""Where `reactor dev` records the stack it runs, so that every other command finds it.

`reactor dev` writes var/dev-stack.json of the checkout (REACTOR_DEV_STACK names another
file) when everything is up, and removes it when it stops. The other commands read it
while that `reactor dev` still runs: its Temporal address, UI, API, outbox, intake queue,
development key and generated webhook secret come from there, below what the environment
says explicitly and above `.env`.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_STACK_FILE = Path(__file__).resolve().parent.parent / "var" / "dev-stack.json"


def stack_file() -> Path:
    return Path(os.environ.get("REACTOR_DEV_STACK") or DEFAULT_STACK_FILE)


@dataclass(frozen=True)
class DevStack:
    pid: int
    api_url: str
    temporal_address: str
    ui_url: str
    data_dir: str
    outbox_dir: str
    intake_database_url: str
    # The development key file, when reactor dev encrypts with one (else None).
    key_file: str | None = None
    # The generated webhook secret's file, when WEBHOOK_SECRET was not set (else None).
    secret_file: str | None = None

    def settings(self) -> dict[str, str]:
        """The settings this stack stands for, by variable name."""
        values = {
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_UI_URL": self.ui_url,
            "EMAIL_OUTBOX_DIR": self.outbox_dir,
            "INTAKE_DATABASE_URL": self.intake_database_url,
        }
        for name, file in (
            ("REACTOR_ENCRYPTION_KEYS", self.key_file),
            ("WEBHOOK_SECRET", self.secret_file),
        ):
            if file:
                try:
                    values[name] = Path(file).read_text().strip()
                except OSError:
                    pass
        return values


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_stack(path: Path | None = None) -> DevStack | None:
    """The stack a running `reactor dev` recorded; None when there is none (or it died)."""
    path = path or stack_file()
    try:
        stack = DevStack(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return stack if _alive(stack.pid) else None


def record(stack: DevStack, path: Path | None = None) -> Path:
    path = path or stack_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(stack), indent=2) + "\n")
    return path


def forget(pid: int, path: Path | None = None) -> None:
    """Remove the record, if it is still this process's."""
    path = path or stack_file()
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def dev_webhook_secret(path: Path) -> tuple[str, bool]:
    """The development webhook secret kept in ``path`` (only its owner reads it), made now
    when the file does not exist: the same secret across restarts of `reactor dev`, and
    one that `reactor send` finds. True when it was made now."""
    from core.codec import create_private_file

    made = create_private_file(path, secrets.token_urlsafe(24))
    kept = path.read_text().strip()
    if not kept:  # left empty by an interrupted first write
        path.unlink()
        return dev_webhook_secret(path)
    return kept, made
