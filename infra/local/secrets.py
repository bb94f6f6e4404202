"""The local stack's secrets: made once, kept in a 0600 file under the state folder.

`tether dev` and `tether token` read the same file, so a token minted by one is accepted by
the other across restarts. Never used in the cloud (Secrets Manager holds the keys there).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from shared import constants as c
from shared.auth_settings import AuthSettings

DEFAULT_STATE_DIR = Path(".tether")
SECRETS_FILE = "secrets.json"
# The running local stack's URLs: `tether dev` writes it, `tether jobs`/`tether watch` read it.
DEV_FILE = "dev.json"


@dataclass(frozen=True)
class LocalSecrets:
    user_token_secret: str
    resume_signing_key: str
    cursor_secret: str

    def auth_settings(self) -> AuthSettings:
        """Local auth: user tokens are HS256 with the local secret (what `tether token` mints)."""
        return AuthSettings.model_validate(
            {
                c.ENV_AUTH_HS256_SECRET: self.user_token_secret,
                c.ENV_RESUME_SIGNING_KEY: self.resume_signing_key,
            }
        )


def local_secrets(state_dir: Path = DEFAULT_STATE_DIR) -> LocalSecrets:
    path = state_dir / SECRETS_FILE
    if path.exists():
        return LocalSecrets(**json.loads(path.read_text()))
    made = LocalSecrets(
        user_token_secret=secrets.token_urlsafe(48),
        resume_signing_key=secrets.token_urlsafe(48),
        cursor_secret=secrets.token_urlsafe(48),
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    # Create with 0600 from the start: no window in which another user could read it.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(asdict(made), handle)
    return made
