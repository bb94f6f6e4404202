"""Resume tokens kept per job: the OS keyring, or a 0600 file when there is none.

`tether jobs create` puts the job's resume token here and `tether watch` takes it back, so a
watch reconnects with a token that can see that one job and nothing else. On a headless Linux
box keyring's only backend is the "fail" one; the tokens then go to `tokens.json` under the
state folder, created 0600 in a 0700 folder (never world-readable, not even for a moment).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Final, Protocol

import keyring
import keyring.backends.fail
from keyring.backend import KeyringBackend
from keyring.errors import KeyringError

KEYRING_SERVICE: Final = "tether.resume-token"
TOKENS_FILE: Final = "tokens.json"


class TokenStore(Protocol):
    def get(self, job_id: str) -> str | None: ...
    def put(self, job_id: str, token: str) -> None: ...
    def delete(self, job_id: str) -> None: ...

    @property
    def where(self) -> str:
        """Where the tokens live, for humans (never the tokens themselves)."""
        ...


class KeyringTokenStore:
    """The OS keychain (macOS Keychain, Secret Service, Windows Credential Locker).

    A keychain that refuses at run time (locked, no session bus) hands over to the file.
    """

    def __init__(self, backend: KeyringBackend, fallback: FileTokenStore) -> None:
        self._backend = backend
        self._fallback = fallback

    @property
    def where(self) -> str:
        return f"keyring ({type(self._backend).__name__})"

    def get(self, job_id: str) -> str | None:
        try:
            found = self._backend.get_password(KEYRING_SERVICE, job_id)
        except KeyringError:
            found = None
        return found if found is not None else self._fallback.get(job_id)

    def put(self, job_id: str, token: str) -> None:
        try:
            self._backend.set_password(KEYRING_SERVICE, job_id, token)
        except KeyringError:
            self._fallback.put(job_id, token)

    def delete(self, job_id: str) -> None:
        with contextlib.suppress(KeyringError):
            self._backend.delete_password(KEYRING_SERVICE, job_id)
        self._fallback.delete(job_id)


class FileTokenStore:
    """`<state dir>/tokens.json`, mode 0600, replaced atomically on every write."""

    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir
        self.path = state_dir / TOKENS_FILE

    @property
    def where(self) -> str:
        return str(self.path)

    def get(self, job_id: str) -> str | None:
        return self._read().get(job_id)

    def put(self, job_id: str, token: str) -> None:
        tokens = self._read()
        tokens[job_id] = token
        self._write(tokens)

    def delete(self, job_id: str) -> None:
        tokens = self._read()
        if tokens.pop(job_id, None) is not None:
            self._write(tokens)

    def _read(self) -> dict[str, str]:
        try:
            loaded = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {str(key): str(value) for key, value in dict(loaded).items()}

    def _write(self, tokens: dict[str, str]) -> None:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0600; rename makes the new content appear all at once.
        descriptor, temporary = tempfile.mkstemp(dir=self._dir, prefix=".tokens-", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(tokens, handle)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


def token_store(state_dir: Path) -> TokenStore:
    """The keyring when a real backend is there, else the 0600 file."""
    backend = keyring.get_keyring()
    if isinstance(backend, keyring.backends.fail.Keyring) or backend.priority <= 0:
        return FileTokenStore(state_dir)
    return KeyringTokenStore(backend, FileTokenStore(state_dir))
