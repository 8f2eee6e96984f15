"""The API docs work without internet, and the spec says what the webhook takes and answers."""

from __future__ import annotations

import re

import httpx
import pytest
from openapi_spec_validator import validate

from api.app import create_app
from core.examples import sample_events
from tests.helpers import make_settings

WEBHOOK = "/webhooks/likemagic"


@pytest.fixture
async def http(tmp_path):
    # No lifespan and no Temporal: the docs need neither. ASGITransport never opens a
    # socket, so whatever the pages load must come from the app itself.
    app = create_app(make_settings(tmp_path, REACTOR_ENV="development"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://reactor"
    ) as client:
        yield client


def assets(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*[=:]\s*['"]([^'"]+)['"]""", page)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_every_asset_from_the_api_itself(http, page):
    answer = await http.get(page)
    assert answer.status_code == 200
    found = assets(answer.text)
    assert any(a.endswith(".js") for a in found), found
    for asset in found:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        loaded = await http.get(asset)
        assert loaded.status_code == 200, asset
        assert len(loaded.content) > 1000, asset
    assert "cdn." not in answer.text and "fonts.googleapis" not in answer.text
    # The spec the page renders is served too.
    assert (await http.get("/openapi.json")).status_code == 200


async def test_the_spec_is_valid_openapi(http):
    validate((await http.get("/openapi.json")).json())


async def spec_of_the_webhook(http) -> tuple[dict, dict]:
    spec = (await http.get("/openapi.json")).json()
    return spec, spec["paths"][WEBHOOK]["post"]


def resolve(spec: dict, node: dict) -> dict:
    ref = node.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else node


async def test_the_webhook_declares_its_secret_header(http):
    _, operation = await spec_of_the_webhook(http)
    [header] = [p for p in operation["parameters"] if p["in"] == "header"]
    assert header["name"] == "lm-webhook-secret" and header["required"] is True


async def test_the_webhook_body_is_the_event_envelope_with_the_samples_as_examples(http):
    spec, operation = await spec_of_the_webhook(http)
    body = operation["requestBody"]["content"]["application/json"]
    event = resolve(spec, body["schema"])
    assert set(event["required"]) == {"id", "topic"}
    assert {"objectId", "objectType", "actorId", "actorType", "eventSource"} <= set(
        event["properties"]
    )
    assert {"pmsPropertyId", "timestamp", "context"} <= set(event["properties"])
    topics = resolve(spec, event["properties"]["topic"]["anyOf"][0])["enum"]
    assert "RESERVATION_CONDITION_UPDATED" in topics and "TASK_COMPLETED" in topics
    examples = {name: e["value"] for name, e in body["examples"].items()}
    assert examples == sample_events()
    # The thin check-in, as the platform sends it: no guest in it.
    assert set(examples["reservation_checked_in"]["context"]) == {"checkedInBy", "userProfileId"}
    assert "reservation_checked_in_seed_illustration" not in examples


async def test_every_answer_of_the_webhook_has_its_json_shape(http):
    spec, operation = await spec_of_the_webhook(http)
    answers = operation["responses"]
    assert set(answers) == {"200", "400", "401", "413", "422", "503"}
    held = answers["200"]["content"]["application/json"]["schema"]["anyOf"]
    statuses = set()
    for option in held:
        schema = resolve(spec, option)
        status = schema["properties"]["status"]
        statuses |= set(status.get("enum", [status.get("const")]))
    assert statuses == {"accepted", "duplicate", "queued"}
    for code in ("400", "401", "413", "422", "503"):
        schema = answers[code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorAnswer"}, code
    error = spec["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"code", "message"}


async def test_no_operation_documents_fastapis_error_shape(http):
    spec = (await http.get("/openapi.json")).json()
    assert "HTTPValidationError" not in str(spec)
