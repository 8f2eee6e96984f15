"""The README's worked example runs as written: module, registry entry, test."""

from __future__ import annotations

import importlib
import re
import sys

from core.events import Topic
from tests.conftest import sample
from tests.fakes import FakeService, Reply
from tests.helpers import by_name, running_reactor, unique
from workflows import registry
from workflows.reaction import Reaction

from .test_docs import README


def snippets() -> list[str]:
    section = README.split("## Adding a reaction", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


async def test_the_worked_example_works(temporal_env, tmp_path, monkeypatch):
    module_code, entry_code, test_code = snippets()
    (tmp_path / "readme_checkout_notice.py").write_text(module_code)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("readme_checkout_notice")
    try:
        from activities.slack import SlackActivities

        entry = eval(  # the README's registry entry, as written
            entry_code,
            {
                "Reaction": Reaction,
                "Topic": Topic,
                "SlackActivities": SlackActivities,
                "CheckoutNotice": module.CheckoutNotice,
            },
        )
        namespace = {
            "unique": unique,
            "sample": sample,
            "FakeService": FakeService,
            "Reply": Reply,
            "running_reactor": running_reactor,
            "by_name": by_name,
        }
        exec(test_code, namespace)
        with registry.registered(entry):
            await namespace["test_checkout_notice"](temporal_env, tmp_path / "run")
    finally:
        sys.modules.pop("readme_checkout_notice", None)
