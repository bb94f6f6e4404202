"""Opaque, tamper-evident pagination cursors.

A cursor is DynamoDB's LastEvaluatedKey plus the scope it was issued for (tenant and filter),
base64url-encoded and signed with HMAC-SHA256. A client can pass it back but cannot read a
key it was not given, forge one, or replay another tenant's cursor. The key may rotate (a
`KeySource`): the current key signs, and a cursor the previous key signed still decodes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from shared.domain.errors import InvalidCursor
from shared.domain.keys import KeySource, key_source

_SIGNATURE_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


class CursorCodec:
    def __init__(self, secret: bytes | KeySource) -> None:
        self._keys = key_source(secret)
        if len(self._keys.keys().current) < 16:
            raise ValueError("the cursor secret must be at least 16 bytes")

    def encode(self, scope: str, position: dict[str, Any]) -> str:
        payload = json.dumps({"s": scope, "p": position}, separators=(",", ":"), sort_keys=True)
        raw = payload.encode()
        return f"{_b64(raw)}.{_b64(_sign(self._keys.keys().current, raw))}"

    def decode(self, scope: str, cursor: str) -> dict[str, Any]:
        keys = self._keys.keys().verifying
        try:
            body, signature = cursor.split(".", 1)
            raw = _unb64(body)
            given = _unb64(signature)
            valid = any(hmac.compare_digest(given, _sign(key, raw)) for key in keys)
            document = json.loads(raw) if valid else None
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidCursor() from exc
        if not isinstance(document, dict) or document.get("s") != scope:
            raise InvalidCursor()
        position = document.get("p")
        if not isinstance(position, dict):
            raise InvalidCursor()
        return position
