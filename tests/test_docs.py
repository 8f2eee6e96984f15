"""The README stays true: its configuration table is the settings class, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def documented_variables() -> set[str]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z0-9_<>\[\]]+)` \|", section, flags=re.MULTILINE))


def settings_variables() -> set[str]:
    return {str(f.validation_alias) for f in Settings.model_fields.values()}


def test_every_setting_is_in_the_readme_table_and_nothing_else():
    assert documented_variables() == settings_variables()


def test_readme_commands_exist():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run", "test", "bench"):
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), target
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_sample_events_are_in_the_project():
    names = {p.name for p in (ROOT / "examples" / "events").glob("*.json")}
    assert "reservation_checked_in.json" in names
    assert len(names) >= 8


def test_every_test_the_readme_cites_for_a_claim_exists():
    """A claim names the test that keeps it true: renaming or dropping that test must not
    leave the README citing nothing."""
    tests = {p.name: p.read_text() for p in (ROOT / "tests").glob("test_*.py")}
    # Not citations: the snippets' own tests, and the files `reactor new reaction` writes.
    prose = re.sub(r"```.*?```", "", README, flags=re.DOTALL)
    prose = re.sub(r"tests/test_(NAME|condition_alert)\.py", "", prose)
    cited_files = re.findall(r"tests/(test_\w+\.py)", prose)
    cited = re.findall(r"(?:tests/(test_\w+\.py)::)?\b(test_\w+)\b(?!\.py)", prose)
    assert len(cited) > 20
    for name in cited_files:
        assert name in tests, name
    for file, test in cited:
        where = [tests[file]] if file else list(tests.values())
        assert any(re.search(rf"^(async )?def {test}\(", t, re.MULTILINE) for t in where), test
