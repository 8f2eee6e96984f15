"""The payload codec (keys, rotation, old plain payloads) and the codec server the
Temporal UI decodes through (token, namespace, CORS for the UI's origin only)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from temporalio.api.common.v1 import Payload

from api.app import create_app
from core.codec import (
    ENCODING,
    KEY_ID_METADATA,
    DecryptionError,
    EncryptionCodec,
    KeySettingError,
    create_dev_key_file,
    new_key_text,
    parse_keys,
)
from core.settings import Settings
from tests.conftest import DATA_CONVERTER, TEST_ENCRYPTION_KEYS
from tests.helpers import SECRET, make_settings

GUEST = {"guestName": "Ana Silva", "email": "ana.silva@example.com"}
UI = "http://ui.test:8233"
TOKEN = "codec-token-0123456789abcdef"


def plain_payload() -> Payload:
    [payload] = DATA_CONVERTER.payload_converter.to_payloads([GUEST])
    return payload


async def test_payloads_are_encrypted_with_the_first_key_and_tagged_with_its_id():
    codec = EncryptionCodec(parse_keys(TEST_ENCRYPTION_KEYS))
    [sealed] = await codec.encode([plain_payload()])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"test2"
    assert b"Ana Silva" not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [plain_payload()]


async def test_a_rotated_key_still_decrypts_what_the_old_one_encrypted():
    old = EncryptionCodec(parse_keys(TEST_ENCRYPTION_KEYS.split(",")[1]))  # test1 alone
    [sealed] = await old.encode([plain_payload()])
    assert sealed.metadata[KEY_ID_METADATA] == b"test1"
    rotated = EncryptionCodec(parse_keys(TEST_ENCRYPTION_KEYS))
    assert await rotated.decode([sealed]) == [plain_payload()]


async def test_payloads_written_before_encryption_pass_through():
    codec = EncryptionCodec(parse_keys(TEST_ENCRYPTION_KEYS))
    assert await codec.decode([plain_payload()]) == [plain_payload()]


async def test_a_payload_of_an_unknown_or_wrong_key_is_a_clear_error():
    [sealed] = await EncryptionCodec(parse_keys(new_key_text("other"))).encode([plain_payload()])
    with pytest.raises(DecryptionError, match="key 'other'.*test2, test1"):
        await EncryptionCodec(parse_keys(TEST_ENCRYPTION_KEYS)).decode([sealed])
    impostor = EncryptionCodec(parse_keys(new_key_text("test2")))
    [forged] = await impostor.encode([plain_payload()])
    with pytest.raises(DecryptionError, match="does not decrypt with key 'test2'"):
        await EncryptionCodec(parse_keys(TEST_ENCRYPTION_KEYS)).decode([forged])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "holds no key"),
        ("nokey", "is not `id:base64-key`"),
        ("k1:not base64!", "'k1' is not valid base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "'k1' holds 5 bytes; AES-256 needs 32"),
        (f"{new_key_text('k1')},{new_key_text('k1')}", "'k1' is given twice"),
    ],
)
def test_unusable_keys_are_refused_without_showing_them(text, problem):
    with pytest.raises(KeySettingError, match=problem) as err:
        parse_keys(text)
    secret = text.partition(":")[2]
    assert not secret or secret not in str(err.value)


def test_production_refuses_to_start_without_a_key(tmp_path):
    settings = Settings(_env_file=None, REACTOR_ENCRYPTION_KEYS="", WEBHOOK_SECRET=SECRET)  # type: ignore[call-arg]
    dev_file = tmp_path / "dev-encryption-keys"
    create_dev_key_file(dev_file)  # a development key does not count in production
    with pytest.raises(ValueError, match="REACTOR_ENCRYPTION_KEYS is not set: guest data"):
        settings.check_encryption_keys(dev_file)
    with pytest.raises(ValueError, match="REACTOR_ENCRYPTION_KEYS is not set"):
        create_app(settings)


def test_development_uses_the_key_reactor_dev_created(tmp_path):
    dev_file = tmp_path / "var" / "dev-encryption-keys"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REACTOR_ENCRYPTION_KEYS="", REACTOR_ENV="development"
    )
    with pytest.raises(ValueError, match="run `reactor dev` once"):
        settings.check_encryption_keys(dev_file)
    assert create_dev_key_file(dev_file) is True
    assert create_dev_key_file(dev_file) is False  # kept: it decrypts what it encrypted
    settings.check_encryption_keys(dev_file)
    [(key_id, key)] = settings.encryption_key_ring(dev_file)
    assert (key_id, len(key)) == ("dev1", 32)
    assert oct(dev_file.stat().st_mode & 0o777) == "0o600"


# --- the codec server ----------------------------------------------------------------------


def body(*payloads: Payload) -> dict:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def payloads_of(answer: httpx.Response) -> list[Payload]:
    return [
        Payload(
            metadata={k: base64.b64decode(v) for k, v in p.get("metadata", {}).items()},
            data=base64.b64decode(p.get("data", "")),
        )
        for p in answer.json()["payloads"]
    ]


async def codec_http(temporal_env, tmp_path: Path, **overrides: str) -> httpx.AsyncClient:
    settings = make_settings(tmp_path, TEMPORAL_UI_URL=f"{UI}/", **overrides)
    app = create_app(settings, temporal_client=temporal_env.client)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reactor")


async def test_the_codec_server_decodes_and_encodes_with_the_token(temporal_env, tmp_path):
    [sealed] = await DATA_CONVERTER.payload_codec.encode([plain_payload()])  # type: ignore[union-attr]
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": "default"}
    async with await codec_http(temporal_env, tmp_path, REACTOR_CODEC_TOKEN=TOKEN) as http:
        decoded = await http.post("/codec/decode", json=body(sealed), headers=auth)
        assert decoded.status_code == 200
        [plain] = payloads_of(decoded)
        assert json.loads(plain.data) == GUEST
        encoded = await http.post("/codec/encode", json=body(plain_payload()), headers=auth)
        assert encoded.status_code == 200
        [again] = payloads_of(encoded)
        assert again.metadata[KEY_ID_METADATA] == b"test2" and b"Ana" not in again.data
        # Payloads reactor never encrypted come back as they are.
        passed = await http.post("/codec/decode", json=body(plain_payload()), headers=auth)
        assert payloads_of(passed) == [plain_payload()]


async def test_the_codec_server_refuses_without_the_token(temporal_env, tmp_path):
    [sealed] = await DATA_CONVERTER.payload_codec.encode([plain_payload()])  # type: ignore[union-attr]
    async with await codec_http(temporal_env, tmp_path, REACTOR_CODEC_TOKEN=TOKEN) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
            answer = await http.post("/codec/decode", json=body(sealed), headers=headers)
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "unauthorized"
            assert "Ana" not in answer.text
        other = await http.post(
            "/codec/decode",
            json=body(sealed),
            headers={"Authorization": f"Bearer {TOKEN}", "X-Namespace": "elsewhere"},
        )
        assert other.status_code == 400
    # Outside development, no token configured: the codec is off.
    async with await codec_http(temporal_env, tmp_path) as http:
        answer = await http.post("/codec/decode", json=body(sealed))
        assert answer.status_code == 403
        assert "REACTOR_CODEC_TOKEN" in answer.json()["error"]["message"]
    # In development it answers without a token (reactor dev's UI on localhost).
    async with await codec_http(temporal_env, tmp_path, REACTOR_ENV="development") as http:
        answer = await http.post("/codec/decode", json=body(sealed))
        assert answer.status_code == 200


async def test_the_codec_server_answers_cors_for_the_ui_origin_only(temporal_env, tmp_path):
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    async with await codec_http(temporal_env, tmp_path, REACTOR_CODEC_TOKEN=TOKEN) as http:
        allowed = await http.options("/codec/decode", headers={"Origin": UI, **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == UI
        assert "x-namespace" in allowed.headers["access-control-allow-headers"].lower()
        other = await http.options(
            "/codec/decode", headers={"Origin": "http://evil.test", **preflight}
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers


def test_a_weak_codec_token_stops_the_api_outside_development(tmp_path):
    settings = make_settings(tmp_path, REACTOR_CODEC_TOKEN="changeme")
    with pytest.raises(ValueError, match="REACTOR_CODEC_TOKEN is weak"):
        create_app(settings)
