"""The HTTP API's CORS policy, defined once for the CDK app and the local gateway.

In the cloud, API Gateway applies it (`HttpApi(cors_origins=...)`): it answers preflight
`OPTIONS` requests itself and adds the headers to the function's answers. The local gateway
does the same with `CorsPolicy` (`tether dev --cors-origin`), so a page served from another
origin (the console on CloudFront, your own web app) behaves locally as it will when deployed.
WebSockets are not subject to CORS. No credentials mode: tokens travel in `Authorization`,
never in cookies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

ALLOW_METHODS: Final = ("GET", "POST", "DELETE")
# What a browser may send and read cross-origin: the bearer token and JSON bodies in, the
# headers the routes answer with (201's Location, 429's Retry-After, 401's challenge) out.
ALLOW_HEADERS: Final = ("authorization", "content-type")
EXPOSE_HEADERS: Final = ("location", "retry-after", "www-authenticate")
MAX_AGE_SECONDS: Final = 3600


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Which origins may call the HTTP API from a browser, and the headers that says so."""

    origins: Sequence[str]

    def allows(self, origin: str | None) -> bool:
        return origin is not None and origin in self.origins

    def preflight(self, origin: str | None, method: str | None) -> Mapping[str, str]:
        """The headers answering an `OPTIONS` preflight; none for an origin not allowed."""
        if not self.allows(origin) or (method or "").upper() not in ALLOW_METHODS:
            return {"Vary": "Origin"}
        assert origin is not None
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ",".join(ALLOW_METHODS),
            "Access-Control-Allow-Headers": ",".join(ALLOW_HEADERS),
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
            "Vary": "Origin",
        }

    def response(self, origin: str | None) -> Mapping[str, str]:
        """The headers added to an answer for `origin`; none for an origin not allowed."""
        if not self.allows(origin):
            return {"Vary": "Origin"}
        assert origin is not None
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": ",".join(EXPOSE_HEADERS),
            "Vary": "Origin",
        }
