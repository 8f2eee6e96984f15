"""`reactor new reaction` and the README's walk-through, run as written in a copy of the
project (the repository itself is never changed)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_docs import README

ROOT = Path(__file__).resolve().parent.parent
SECTION = README.split("## A new reaction in five minutes", 1)[1].split("\n## ", 1)[0]
# These tests run ruff, mypy (a cold cache) and pytest in subprocesses, with budgets of
# their own (300 s, 600 s): 30 s here on a loaded machine, over the suite's 120 s on a
# CI machine a few times slower. The suite's limit is for hangs, not for this.
pytestmark = pytest.mark.timeout(900)


def copy_project(to: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)
    return to


def run(project: Path, line: str) -> subprocess.CompletedProcess[str]:
    """A README command, with this interpreter: `reactor X` is `python -m cli X`."""
    words = shlex.split(line)
    if words[0] == "reactor":
        words = [sys.executable, "-m", "cli", *words[1:]]
    elif words[0] == ".venv/bin/pytest":
        words = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *words[1:]]
    # The copy's own packages come first on the path (python -m puts the working dir first).
    return subprocess.run(words, cwd=project, capture_output=True, text=True, timeout=300)


def test_the_readme_walk_through_works_as_written(tmp_path):
    project = copy_project(tmp_path / "reactor")
    generate, test_run = re.findall(r"```sh\n(.*?)```", SECTION, flags=re.DOTALL)
    new_function, new_test = re.findall(r"```python\n(.*?)```", SECTION, flags=re.DOTALL)

    made = run(project, generate.strip())
    assert made.returncode == 0, made.stderr
    generated = run(project, ".venv/bin/pytest tests/test_condition_alert.py")
    assert generated.returncode == 0, generated.stdout + generated.stderr

    module = project / "workflows" / "condition_alert.py"
    code = module.read_text()
    code, replaced = re.subn(
        r"^def message_for\(.*?(?=^\S)", new_function + "\n\n", code, flags=re.DOTALL | re.M
    )
    assert replaced == 1
    module.write_text(code)
    (project / "tests" / "test_condition_alert.py").write_text(new_test)

    tested = run(project, test_run.strip())
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "2 passed" in tested.stdout
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "workflows", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout
    registry = (project / "workflows" / "registry.py").read_text()
    assert (
        '"condition-alert",' in registry
        and (ROOT / "workflows" / "registry.py").read_text() != registry
    )
    assert not (ROOT / "workflows" / "condition_alert.py").exists()


def test_a_new_reaction_refuses_unknown_topics_and_names_it_has(tmp_path):
    project = copy_project(tmp_path / "reactor")
    unknown = run(project, "reactor new reaction x-alert --topic NOT_A_TOPIC")
    taken = run(project, "reactor new reaction welcome-email --topic RESERVATION_CHECKED_IN")
    bad = run(project, "reactor new reaction Bad_Name --topic TASK_CREATED")
    plain = run(project, "reactor new reaction task-echo --topic TASK_CREATED --topic TASK_UPDATED")
    assert unknown.returncode == 2 and "not a documented topic: NOT_A_TOPIC" in unknown.stderr
    assert taken.returncode == 1 and "exists already" in taken.stderr
    assert bad.returncode == 2
    assert plain.returncode == 0, plain.stderr
    assert (
        "Topic.TASK_CREATED, Topic.TASK_UPDATED"
        in (project / "workflows" / "registry.py").read_text()
    )
    passed = run(project, ".venv/bin/pytest tests/test_task_echo.py")
    assert passed.returncode == 0, passed.stdout + passed.stderr


# Every option alone, none, and all at once (on three topics, so that the registry entry
# is laid out over lines), generated into one copy of the project.
EVERY_OPTION = {
    "guest-note": "--topic RESERVATION_CONDITION_UPDATED --email",
    "task-hook": "--topic TASK_CREATED --http",
    "stay-ping": "--topic RESERVATION_CHECKED_OUT --slack",
    "task-note": "--topic TASK_UPDATED",
    "all-three": "--topic MESSAGE_RECEIVED --topic RESERVATION_CONDITION_UPDATED "
    "--topic RESERVATION_CHECKED_OUT --email --slack --http",
}


def test_every_option_writes_code_that_passes_lint_types_and_its_own_test(tmp_path):
    project = copy_project(tmp_path / "reactor")
    for name, options in EVERY_OPTION.items():
        made = run(project, f"reactor new reaction {name} {options}")
        assert made.returncode == 0, made.stderr
    templates = project / "activities" / "templates" / "email"
    for language in ("en", "de", "fr", "it"):
        for kind in ("guest_note", "all_three"):
            for part in ("subject.txt", "txt", "html"):
                assert (templates / language / f"{kind}.{part}").is_file(), (language, kind)
    assert not list(templates.glob("*/task_hook.*"))

    # What `make test` checks first: lint, layout, strict types.
    for check in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]):
        cache = ["--cache-dir", str(tmp_path / "mypy-cache")] if check == ["mypy"] else []
        done = subprocess.run(
            [sys.executable, "-m", *check, *cache],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{check}: {done.stdout}{done.stderr}"

    # Each generated test, and the template test (it finds the new kinds in every language).
    tests = [f"tests/test_{name.replace('-', '_')}.py" for name in EVERY_OPTION]
    passed = run(project, f".venv/bin/pytest {' '.join(tests)} tests/test_templates.py")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    counted = re.search(r"(\d+) passed", passed.stdout)
    assert counted and int(counted[1]) > len(tests)  # the template tests ran too


def test_a_reaction_whose_endpoint_is_not_set_is_skipped_with_the_variable(tmp_path):
    project = copy_project(tmp_path / "reactor")
    made = run(project, "reactor new reaction task-hook --topic TASK_CREATED --http")
    assert made.returncode == 0, made.stderr
    # The generated test, with the endpoint unset: the router names the variable to set.
    test = project / "tests" / "test_task_hook.py"
    code = test.read_text().replace(
        "reactor_kit(skipping_env, tmp_path)",
        "reactor_kit(skipping_env, tmp_path, REACTION_URL_TASK_HOOK=None)",
    )
    code = code.split('    assert outcome.status == "done"', 1)[0] + (
        '    assert outcome.status == "skipped"\n'
        '    assert outcome.detail == "not configured: set REACTION_URL_TASK_HOOK"\n'
        '    assert kit.calls("task-hook") == []\n'
    )
    test.write_text(code)
    passed = run(project, ".venv/bin/pytest tests/test_task_hook.py")
    assert passed.returncode == 0, passed.stdout + passed.stderr
