"""The sample events of examples/events/: the platform's own thin payloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Beside the packages in a checkout; in the working directory where reactor is installed
# (the image copies examples/ into /app).
EXAMPLES = next(
    (
        folder
        for folder in (
            Path(__file__).resolve().parent.parent / "examples" / "events",
            Path("examples/events"),
        )
        if folder.is_dir()
    ),
    Path("examples/events"),
)
# Not the platform's payload: the platform guide's example receiver's extra keys.
ILLUSTRATIONS = frozenset({"reservation_checked_in_seed_illustration"})


def sample_events(folder: Path = EXAMPLES) -> dict[str, dict[str, Any]]:
    """The thin real samples by file stem (illustrations left out), in name order."""
    return {
        path.stem: json.loads(path.read_text())
        for path in sorted(folder.glob("*.json"))
        if path.stem not in ILLUSTRATIONS
    }
