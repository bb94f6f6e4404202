"""Where the client connects and with which token: flags, then environment, then `tether dev`.

`tether dev` writes `<state dir>/dev.json` = {"httpUrl", "wsUrl", "managementUrl",
"awsEndpoint"} when the local stack is up, so on a developer's machine every client command
works with no flags. A token comes from `--token`, then `TETHER_TOKEN`, then is minted for the
local stack from its secrets file (tenant `local`, user `dev`, as `tether dev` prints).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.local.secrets import DEV_FILE, SECRETS_FILE, local_secrets
from shared.domain.auth import Scope
from shared.domain.clock import SystemClock
from shared.services.auth import mint_dev_token

ENV_HTTP_URL: Final = "TETHER_HTTP_URL"
ENV_WS_URL: Final = "TETHER_WS_URL"
ENV_TOKEN: Final = "TETHER_TOKEN"  # noqa: S105 - the variable's name, not a token
LOCAL_TENANT: Final = "local"
LOCAL_USER: Final = "dev"
MINTED_TOKEN_TTL: Final = timedelta(hours=1)


class ClientSettings(BaseSettings):
    """The client's environment, read once."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    http_url: str | None = Field(default=None, alias=ENV_HTTP_URL)
    ws_url: str | None = Field(default=None, alias=ENV_WS_URL)
    token: str | None = Field(default=None, alias=ENV_TOKEN)


class ConfigError(Exception):
    """Something the user must pass or start before the command can run."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    http_url: str
    ws_url: str


def local_stack_file(state_dir: Path) -> dict[str, str]:
    """What `tether dev` wrote about the running stack, or {} when it is not running."""
    try:
        loaded = json.loads((state_dir / DEV_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(key): str(value) for key, value in dict(loaded).items()}


def endpoints(
    state_dir: Path,
    *,
    http_url: str | None = None,
    ws_url: str | None = None,
    settings: ClientSettings | None = None,
) -> Endpoints:
    env = settings or ClientSettings()
    local = local_stack_file(state_dir)
    http = http_url or env.http_url or local.get("httpUrl")
    ws = ws_url or env.ws_url or local.get("wsUrl")
    if not http or not ws:
        missing = " and ".join(
            name for name, value in (("--http-url", http), ("--ws-url", ws)) if not value
        )
        raise ConfigError(
            f"no endpoint: pass {missing} (or {ENV_HTTP_URL}/{ENV_WS_URL}), or start the "
            f"local stack with `tether dev`, which writes {state_dir / DEV_FILE}"
        )
    return Endpoints(http_url=http, ws_url=ws)


def user_token(
    state_dir: Path, *, token: str | None = None, settings: ClientSettings | None = None
) -> str:
    """The caller's bearer token; minted for the local stack when none is given."""
    given = token or (settings or ClientSettings()).token
    if given:
        return given
    if not (state_dir / SECRETS_FILE).exists():
        raise ConfigError(
            f"no token: pass --token or set {ENV_TOKEN} (`tether token` mints one for the "
            f"local stack), or start `tether dev` so one can be minted from {state_dir}"
        )
    return mint_dev_token(
        local_secrets(state_dir).user_token_secret,
        tenant=LOCAL_TENANT,
        subject=LOCAL_USER,
        scopes=list(Scope),
        ttl=MINTED_TOKEN_TTL,
        clock=SystemClock(),
    )
