"""The `reactor` command: run the system or one of its parts, and operate on events.

One module per group of commands: `dev` (dev, api, worker, setup), `send`, `status`
(status, failed), `intake`, `replay`, `check_replay`, `forget`, `new` (new reaction);
`common` holds what they share.
"""

from __future__ import annotations

import importlib

import typer

from cli.common import app, failed_query, parse_since, reactions_query
from core.process import exit_now

__all__ = ["app", "failed_query", "main", "parse_since", "reactions_query"]

# Importing a module registers its commands with `app`, in the order `--help` lists them.
COMMAND_MODULES = ("dev", "send", "status", "intake", "replay", "check_replay", "forget", "new")
for _module in COMMAND_MODULES:
    importlib.import_module(f"cli.{_module}")


def main() -> None:
    """Entry point: run the command, then leave without interpreter finalization."""
    try:
        # Without standalone mode, click returns the status of a typer.Exit, not raises it.
        result = app(standalone_mode=False)
        status = result if isinstance(result, int) else 0
    except typer.Exit as err:
        status = err.exit_code
    except (typer.Abort, KeyboardInterrupt):
        status = 130
    except Exception as err:  # click usage errors and the like
        import click

        # typer vendors its own click: its usage errors are not click.ClickException.
        show = getattr(err, "show", None)
        if isinstance(err, click.ClickException | typer.TyperException) and callable(show):
            show()
            status = int(getattr(err, "exit_code", 2))
        else:
            raise
    exit_now(status)
