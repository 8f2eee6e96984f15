"""Links into the Temporal Web UI: one execution, or a list filtered by a visibility query.

The CLI prints them, failure alerts carry them, and the README's ready-made filter
links are these functions' output (tests/test_cli.py holds the README to it).
"""

from __future__ import annotations

from urllib.parse import quote


def _base(ui_url: str, namespace: str) -> str:
    return f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}"


def workflow_url(ui_url: str, namespace: str, workflow_id: str) -> str:
    """The UI page of a workflow ID's latest run."""
    # Reaction IDs hold a '/', which must not read as a path separator.
    return f"{_base(ui_url, namespace)}/workflows/{quote(workflow_id, safe='')}"


def list_url(ui_url: str, namespace: str, query: str) -> str:
    """The UI's workflow list filtered by a visibility query."""
    return f"{_base(ui_url, namespace)}/workflows?query={quote(query, safe='')}"
