"""The web console: static files, no build step, served by `tether dev` at /console/.

`static/` holds plain HTML, CSS and ES modules that talk to Tether's public HTTP API and
WebSocket only, so the same folder can be put on any static host next to a deployed stack (with
a `config.json` naming its URLs): the CDK app does exactly that (`infra.cloud.console`, S3 behind
CloudFront). The local stack serves it with a few local-only helpers (`infra.local.console`): a
dev token, the push sink's deliveries and a sample CSV in S3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

STATIC_DIR: Final = Path(__file__).parent / "static"
CONFIG_FILE: Final = "config.json"  # {"httpUrl", "wsUrl", "local"} beside index.html


def content_security_policy(connect_src: str) -> str:
    """The console's CSP: it loads only its own files and talks to the API at `connect_src`."""
    return (
        f"default-src 'self'; connect-src 'self' {connect_src}; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def static_files() -> list[Path]:
    """Every file the console is made of (what a first load transfers, at most)."""
    return sorted(path for path in STATIC_DIR.rglob("*") if path.is_file())
