"""Opaque, tamper-evident pagination cursors.

A cursor is DynamoDB's LastEvaluatedKey plus the scope it was issued for (tenant and filter),
base64url-encoded and signed with HMAC-SHA256. A client can pass it back but cannot read a
key it was not given, forge one, or replay another tenant's cursor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from shared.domain.errors import InvalidCursor

_SIGNATURE_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the cursor secret must be at least 16 bytes")
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def encode(self, scope: str, position: dict[str, Any]) -> str:
        payload = json.dumps({"s": scope, "p": position}, separators=(",", ":"), sort_keys=True)
        raw = payload.encode()
        return f"{_b64(raw)}.{_b64(self._sign(raw))}"

    def decode(self, scope: str, cursor: str) -> dict[str, Any]:
        try:
            body, signature = cursor.split(".", 1)
            raw = _unb64(body)
            valid = hmac.compare_digest(_unb64(signature), self._sign(raw))
            document = json.loads(raw) if valid else None
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidCursor() from exc
        if not isinstance(document, dict) or document.get("s") != scope:
            raise InvalidCursor()
        position = document.get("p")
        if not isinstance(position, dict):
            raise InvalidCursor()
        return position
