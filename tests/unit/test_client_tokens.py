"""Resume tokens kept per job: the keyring when there is one, else a 0600 file."""

from __future__ import annotations

import stat
from pathlib import Path

import keyring.backends.fail
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordSetError

from infra.client.tokens import (
    KEYRING_SERVICE,
    FileTokenStore,
    KeyringTokenStore,
    token_store,
)


class MemoryKeyring(KeyringBackend):
    priority = 1

    def __init__(self, *, broken: bool = False) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.items: dict[tuple[str, str], str] = {}
        self.broken = broken

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.broken:
            raise PasswordSetError("locked")
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_file_store_is_0600_in_a_0700_folder(tmp_path: Path) -> None:
    # Given no state folder yet
    store = FileTokenStore(tmp_path / "state")

    # When two tokens are stored and one is replaced
    store.put("j1", "token-1")
    store.put("j2", "token-2")
    store.put("j1", "token-1b")

    # Then the file is readable by its owner only, and holds the latest tokens
    assert mode(store.path) == 0o600
    assert mode(tmp_path / "state") == 0o700
    assert (store.get("j1"), store.get("j2"), store.get("j3")) == ("token-1b", "token-2", None)
    assert list((tmp_path / "state").iterdir()) == [store.path]  # no temporary file left


def test_file_store_delete(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.put("j1", "token-1")

    store.delete("j1")
    store.delete("never-stored")

    assert store.get("j1") is None


def test_headless_linux_without_a_keyring_uses_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyring, "get_keyring", keyring.backends.fail.Keyring)

    store = token_store(tmp_path)
    store.put("j1", "token-1")

    assert isinstance(store, FileTokenStore)
    assert mode(tmp_path / "tokens.json") == 0o600


def test_a_real_keyring_is_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = MemoryKeyring()
    monkeypatch.setattr(keyring, "get_keyring", lambda: backend)

    store = token_store(tmp_path)
    store.put("j1", "token-1")

    assert isinstance(store, KeyringTokenStore)
    assert backend.items == {(KEYRING_SERVICE, "j1"): "token-1"}
    assert store.get("j1") == "token-1"
    assert not (tmp_path / "tokens.json").exists()


def test_a_keyring_that_refuses_hands_over_to_the_file(tmp_path: Path) -> None:
    store = KeyringTokenStore(MemoryKeyring(broken=True), FileTokenStore(tmp_path))

    store.put("j1", "token-1")

    assert store.get("j1") == "token-1"
    assert mode(tmp_path / "tokens.json") == 0o600
