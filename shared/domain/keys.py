"""Signing keys that rotate: the current key signs, the current and the previous one verify.

A key rotated in its store (Secrets Manager's AWSCURRENT / AWSPREVIOUS) reaches a warm process
when its `KeySource` next re-reads it; until then the old key still signs, and afterwards what
the old key signed still verifies, so a rotation never invalidates a resume token or a cursor
that was valid a moment before. Only a second rotation retires a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SigningKeys:
    current: bytes
    previous: bytes | None = None  # None until the first rotation

    @property
    def verifying(self) -> tuple[bytes, ...]:
        """The keys a signature may come from, the current one first."""
        if self.previous is None or self.previous == self.current:
            return (self.current,)
        return (self.current, self.previous)


class KeySource(Protocol):
    def keys(self) -> SigningKeys:
        """The keys as of now (a source may cache them for a while)."""
        ...


@dataclass(frozen=True, slots=True)
class FixedKeys:
    """A key that never rotates: the one set in the environment (the local stack, tests)."""

    key: bytes

    def keys(self) -> SigningKeys:
        return SigningKeys(self.key)


def key_source(key: str | bytes | KeySource) -> KeySource:
    """`key` as a `KeySource`: a plain key is a fixed one."""
    if isinstance(key, str):
        return FixedKeys(key.encode())
    if isinstance(key, bytes):
        return FixedKeys(key)
    return key
