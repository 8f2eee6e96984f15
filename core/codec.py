"""Guest data encrypted in Temporal: a payload codec with AES-256-GCM.

Every payload reactor hands Temporal (workflow, child and activity inputs and results,
signals, queries, updates, memos, failure messages) goes through ``EncryptionCodec``
on its way out and back in. Temporal's histories and its UI only ever see ciphertext;
the codec server (api/codec.py) decodes for people allowed to read them.

Keys are ``id:base64-of-32-bytes``, comma-separated (REACTOR_ENCRYPTION_KEYS): the
first encrypts, every one decrypts, so a key rotates without downtime. Each payload
names the key that encrypted it. Payloads without this codec's encoding (histories
written before it, or by another client) pass through unchanged.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The key `reactor dev` creates (and every `reactor` command of this checkout reads)
# while REACTOR_ENCRYPTION_KEYS is unset: beside the other dev state, in var/.
DEV_KEY_FILE = Path(__file__).resolve().parent.parent / "var" / "dev-encryption-keys"

Key = tuple[str, bytes]


class KeySettingError(ValueError):
    """A key setting that cannot be used; the message never holds key material."""


class DecryptionError(ValueError):
    """A payload this codec encrypted that cannot be decrypted with the keys at hand."""


def parse_keys(text: str, where: str = "REACTOR_ENCRYPTION_KEYS") -> list[Key]:
    """``id:base64,id:base64`` as (id, 32 key bytes) pairs, the encrypting key first."""
    keys: list[Key] = []
    for position, part in enumerate((p.strip() for p in text.split(",") if p.strip()), 1):
        key_id, sep, encoded = part.partition(":")
        key_id = key_id.strip()
        if not sep or not KEY_ID.fullmatch(key_id):
            raise KeySettingError(
                f"{where}: key {position} is not `id:base64-key` (an id of letters, digits, "
                ". _ - before the colon)"
            )
        try:
            raw = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KeySettingError(f"{where}: key {key_id!r} is not valid base64") from None
        if len(raw) != KEY_BYTES:
            raise KeySettingError(
                f"{where}: key {key_id!r} holds {len(raw)} bytes; AES-256 needs {KEY_BYTES} "
                "(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
            )
        if key_id in {k for k, _ in keys}:
            raise KeySettingError(f"{where}: key id {key_id!r} is given twice")
        keys.append((key_id, raw))
    if not keys:
        raise KeySettingError(f"{where} holds no key")
    return keys


def new_key_text(key_id: str) -> str:
    """A fresh ``id:base64`` key."""
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def read_key_file(path: Path) -> list[Key] | None:
    """The keys of a key file, or None when there is no such file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return parse_keys(text, where=str(path))


def create_private_file(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless the file exists, readable by its owner only.
    True when it was created now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")
    return True


def create_dev_key_file(path: Path = DEV_KEY_FILE) -> bool:
    """Create the development key file unless it exists (only its owner reads it).
    True when it was created now."""
    return create_private_file(path, new_key_text("dev1"))


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each whole payload (its metadata too), tagged with the key id."""

    def __init__(self, keys: Sequence[Key]) -> None:
        self._ciphers = {key_id: AESGCM(raw) for key_id, raw in keys}
        self._encrypting = keys[0][0] if keys else None

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        if self._encrypting is None:
            raise DecryptionError(
                "no encryption key: set REACTOR_ENCRYPTION_KEYS (or run `reactor dev` once)"
            )
        key_id = self._encrypting
        nonce = secrets.token_bytes(NONCE_BYTES)
        # The key id as associated data: a payload cannot be passed off as another key's.
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # not ours: written before encryption, or plain by design
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(
                f"payload encrypted with key {key_id!r}, which the keys at hand "
                f"({', '.join(self._ciphers) or 'none'}) do not include"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise DecryptionError(
                f"payload does not decrypt with key {key_id!r} (altered, or another key "
                "under the same id)"
            ) from None
        return Payload.FromString(plain)


def data_converter(keys: Sequence[Key]) -> DataConverter:
    """The pydantic data converter with the codec, failure messages and stack traces
    encoded too (they may quote an event)."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
