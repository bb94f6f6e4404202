"""SigV4 for the local `@connections` API: only callers holding the stack's credentials get in.

On AWS the management API is IAM-authorised: every call is SigV4-signed and API Gateway
recomputes the signature before it looks at the connection. The local gateway does the same
with botocore's own signer (`SigV4Auth`) over the headers the caller says it signed, and the
stack's credentials: an unsigned call, another access key, a signature that does not match the
request (method, path, query, signed headers, body) or one made more than 5 minutes from now is
refused with AWS's 403s. The dispatcher's and the handler's boto3 clients sign with those
credentials, so they pass unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

SERVICE: Final = "execute-api"  # what clients of `apigatewaymanagementapi` sign for
MAX_SKEW: Final = timedelta(minutes=5)  # AWS refuses signatures further from its clock
_AUTHORIZATION: Final = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;_-]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
_CONTENT_SHA256: Final = "x-amz-content-sha256"
_INVALID: Final = "InvalidSignatureException"
_INCOMPLETE: Final = "IncompleteSignatureException"


class SignatureRefused(Exception):
    """The request does not prove it holds the stack's credentials: AWS's code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignedRequest:
    """A request as it reached the gateway: `url` with the path and query as sent."""

    method: str
    url: str
    headers: Mapping[str, Sequence[str]]  # lower-case names, every value of each
    body: bytes


def verify(request: SignedRequest, credentials: ReadOnlyCredentials, now: datetime) -> None:
    """Return when `request` is signed with `credentials` within AWS's clock skew; else raise."""
    authorization = _one(request, "authorization")
    if authorization is None:
        missing = "MissingAuthenticationTokenException"
        raise SignatureRefused(missing, "Missing Authentication Token")
    parsed = _AUTHORIZATION.match(authorization)
    if parsed is None:
        raise SignatureRefused(_INCOMPLETE, "Malformed Authorization header")
    if parsed["service"] != SERVICE:
        raise SignatureRefused(_INVALID, f"Credential must be for {SERVICE}")
    if not hmac.compare_digest(parsed["key"], str(credentials.access_key)):
        raise SignatureRefused(
            "UnrecognizedClientException", "The security token included in the request is invalid"
        )
    timestamp = _timestamp(request, parsed["date"], now)
    signed = parsed["signed"].split(";")
    expected = _signature(request, credentials, signed, timestamp, parsed)
    if not hmac.compare_digest(expected, parsed["signature"]):
        raise SignatureRefused(
            _INVALID,
            "The request signature we calculated does not match the signature you provided",
        )


def _one(request: SignedRequest, name: str) -> str | None:
    values = request.headers.get(name)
    return ",".join(values) if values else None


def _timestamp(request: SignedRequest, scope_date: str, now: datetime) -> str:
    stamp = _one(request, "x-amz-date") or ""
    try:
        signed_at = datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureRefused(_INCOMPLETE, "Missing X-Amz-Date") from None
    if stamp[:8] != scope_date:
        raise SignatureRefused(_INVALID, "Credential date is not X-Amz-Date's")
    if abs(now - signed_at) > MAX_SKEW:
        raise SignatureRefused(_INVALID, f"Signature expired: {stamp}")
    return stamp


def _signature(
    request: SignedRequest,
    credentials: ReadOnlyCredentials,
    signed: list[str],
    timestamp: str,
    scope: re.Match[str],
) -> str:
    """What botocore would have signed for this request, with the stack's secret."""
    if "host" not in signed or signed != sorted(set(signed)):
        raise SignatureRefused(_INVALID, "SignedHeaders must include host")
    headers: dict[str, str] = {}
    for name in signed:
        value = _one(request, name)
        if value is None:
            raise SignatureRefused(_INVALID, f"signed header {name} is missing")
        headers[name] = value
    body_hash = headers.get(_CONTENT_SHA256)
    if body_hash is not None and body_hash != hashlib.sha256(request.body).hexdigest():
        raise SignatureRefused(_INVALID, "x-amz-content-sha256 is not the body")
    rebuilt = AWSRequest(method=request.method, url=request.url, headers=headers, data=request.body)
    rebuilt.context["timestamp"] = timestamp
    signer = SigV4Auth(credentials, scope["service"], scope["region"])
    if signer.signed_headers(signer.headers_to_sign(rebuilt)) != ";".join(signed):
        # e.g. user-agent: botocore never signs it, so a signature over it is not botocore's
        raise SignatureRefused(_INVALID, "SignedHeaders lists unsignable ones")
    canonical = signer.canonical_request(rebuilt)
    return str(signer.signature(signer.string_to_sign(rebuilt, canonical), rebuilt))
