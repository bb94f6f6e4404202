"""Turns bearer tokens into `Principal`s, for the HTTP API, the WebSocket `$connect`
authorizer and the local gateway alike. PyJWT does all parsing and signature checks; this module
decides which keys, algorithms and claims are acceptable, and checks time against the injected
`Clock`.

Two kinds of token reach Tether:

* **User tokens**, from the identity provider: HS256 with a shared secret locally (`tether token`
  mints them, see `mint_dev_token`), RS256/ES256 against the issuer's JWKS in the cloud. Claims:
  `sub`, a tenant claim (`tenant` by default, e.g. `custom:tenant` for Cognito), scopes in
  `scope` (space-separated) and/or `scp` (a list or a string), `iss`, `aud`, `exp`.
* **Resume tokens**, minted by Tether itself when a job is created: HS256 with Tether's own key,
  header `typ: tether-resume+jwt` (RFC 8725 §3.11 explicit typing), `iss: tether`,
  `aud: tether:resume`, claims `sub`, `tenant`, `job`, `iat`, `exp`. They grant `jobs:read` on
  that one job. Each verifier insists on its own `typ`, issuer and audience, so neither kind is
  ever accepted as the other, even if someone configures the same secret for both.

PyJWT checks `exp`/`nbf`/`iat` against the real clock, so those checks are switched off in
PyJWT (the claims are still *required* through its `require` option) and done here against
`Clock.now()`: expiry is `exp <= now - leeway`, the same rule PyJWT applies.

WebSocket credentials (`token_from_websocket`): browsers cannot set `Authorization` on a
WebSocket, so a client either passes `?token=<jwt>` or offers two subprotocols,
`Sec-WebSocket-Protocol: tether.v2, bearer.<jwt>` (a JWT is base64url and dots, all legal in a
subprotocol token). The server must echo one offered subprotocol or browsers drop the
connection; it echoes `tether.v2`, never the bearer entry, so the token is not sent back. A bearer
entry without `tether.v2` is refused, as are two different tokens in query and header.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Protocol

import jwt
from jwt.types import Options
from pydantic import ValidationError

from shared import constants as c
from shared.domain.auth import Principal, Scope
from shared.domain.clock import Clock
from shared.domain.errors import AuthUnavailable, Unauthenticated
from shared.domain.keys import KeySource, key_source

RESUME_ISSUER: Final = "tether"
RESUME_AUDIENCE: Final = "tether:resume"
RESUME_TOKEN_TYPE: Final = "tether-resume+jwt"  # noqa: S105 - a JOSE typ, not a secret
WS_SUBPROTOCOL: Final = "tether.v2"
WS_BEARER_PREFIX: Final = "bearer."
MAX_TOKEN_CHARS: Final = 8192  # far above any real JWT; stops parsing junk early

HS256: Final = "HS256"
JWKS_ALGORITHMS: Final = frozenset({"RS256", "ES256"})
_USER_CLAIMS: Final = ("exp", "sub", "iss", "aud")
_RESUME_CLAIMS: Final = ("exp", "iat", "sub", "iss", "aud", "tenant", "job")

# Order matters: subclasses before their bases (InvalidSignatureError is a DecodeError).
_REASONS: Final[tuple[tuple[type[jwt.PyJWTError], str], ...]] = (
    (jwt.InvalidSignatureError, "the token's signature is invalid"),
    (jwt.InvalidAlgorithmError, "the token's algorithm is not allowed"),
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.InvalidAudienceError, "the token is for another audience"),
    (jwt.InvalidIssuerError, "the token is from another issuer"),
    (jwt.DecodeError, "the token is malformed"),
    (jwt.InvalidKeyError, "the token cannot be checked with the configured key"),
)


class SigningKeyClient(Protocol):
    """What the verifier needs from `jwt.PyJWKClient` (which caches the JWKS); tests fake it."""

    def get_signing_key(self, kid: str) -> jwt.PyJWK: ...


@dataclass(frozen=True, slots=True)
class UserTokenRules:
    """What a user token must say about itself, besides a valid signature."""

    issuer: str
    audience: str
    tenant_claim: str = c.DEFAULT_TENANT_CLAIM
    scope_claims: tuple[str, ...] = ("scope", "scp")
    scope_prefix: str = ""  # e.g. Cognito resource-server scopes: "tether/jobs:read"
    leeway: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if not self.issuer or not self.audience or not self.tenant_claim:
            raise ValueError("issuer, audience and tenant claim must be set")
        if self.issuer == RESUME_ISSUER or self.audience == RESUME_AUDIENCE:
            raise ValueError("user tokens cannot share the resume tokens' issuer or audience")


@dataclass(frozen=True, slots=True)
class WebSocketCredentials:
    token: str
    subprotocol: str | None
    """Echo this in the `$connect` response's `Sec-WebSocket-Protocol`, when not None."""


# -- user tokens -------------------------------------------------------------------------------


class TokenVerifier:
    """Verifies user tokens. Build it with `with_secret` (local) or `with_jwks` (cloud)."""

    def __init__(
        self,
        *,
        algorithms: frozenset[str],
        secret: bytes | None,
        jwks: SigningKeyClient | None,
        rules: UserTokenRules,
        clock: Clock,
    ) -> None:
        # One key source and its algorithm family, never mixed (RFC 8725 §2.1, §3.1).
        if (secret is None) == (jwks is None):
            raise ValueError("configure exactly one of an HS256 secret or a JWKS client")
        allowed = frozenset({HS256}) if secret is not None else JWKS_ALGORITHMS
        if not algorithms or not algorithms <= allowed:
            raise ValueError(f"algorithms must be a non-empty subset of {sorted(allowed)}")
        if secret is not None and len(secret) < c.MIN_HMAC_KEY_BYTES:
            raise ValueError(f"the HS256 secret must be at least {c.MIN_HMAC_KEY_BYTES} bytes")
        self._algorithms = algorithms
        self._secret = secret
        self._jwks = jwks
        self._rules = rules
        self._clock = clock

    @classmethod
    def with_secret(
        cls, secret: str | bytes, *, rules: UserTokenRules, clock: Clock
    ) -> TokenVerifier:
        key = secret.encode() if isinstance(secret, str) else secret
        return cls(algorithms=frozenset({HS256}), secret=key, jwks=None, rules=rules, clock=clock)

    @classmethod
    def with_jwks(
        cls,
        client: SigningKeyClient,
        *,
        rules: UserTokenRules,
        clock: Clock,
        algorithms: Iterable[str] = ("RS256",),
    ) -> TokenVerifier:
        return cls(
            algorithms=frozenset(algorithms), secret=None, jwks=client, rules=rules, clock=clock
        )

    def verify_user_token(self, token: str) -> Principal:
        header = unverified_header(token)
        if header.get("typ") == RESUME_TOKEN_TYPE:
            raise Unauthenticated("a resume token is not a user token")
        if header.get("alg") not in self._algorithms:
            raise Unauthenticated("the token's algorithm is not allowed")
        rules = self._rules
        claims = _decode(
            token,
            self._key_for(header),
            algorithms=self._algorithms,
            issuer=rules.issuer,
            audience=rules.audience,
            required=_USER_CLAIMS,
        )[1]
        check_lifetime(claims, self._clock.now().timestamp(), rules.leeway)
        tenant = claims.get(rules.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise Unauthenticated(f"the token has no {rules.tenant_claim} claim")
        scopes = _scopes(claims, rules.scope_claims, rules.scope_prefix)
        return _principal(tenant_id=tenant, subject=claims["sub"], scopes=scopes)

    def _key_for(self, header: Mapping[str, Any]) -> jwt.PyJWK | bytes:
        if self._secret is not None:
            return self._secret
        assert self._jwks is not None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token names no signing key (kid)")
        try:
            return self._jwks.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError:
            raise AuthUnavailable() from None
        except jwt.PyJWTError:
            raise Unauthenticated("the token's signing key is unknown") from None


# -- resume tokens -----------------------------------------------------------------------------


class ResumeTokens:
    """Mints and verifies resume tokens: one job, read and subscribe only, 24 h by default."""

    def __init__(
        self,
        signing_key: str | bytes | KeySource,
        *,
        clock: Clock,
        ttl: timedelta = timedelta(seconds=c.DEFAULT_RESUME_TOKEN_TTL_SECONDS),
    ) -> None:
        # A rotating key: the current one signs, the previous one still verifies, so a token
        # minted just before a rotation lives its whole lifetime.
        self._keys = key_source(signing_key)
        if len(self._keys.keys().current) < c.MIN_HMAC_KEY_BYTES:
            raise ValueError(f"the resume key must be at least {c.MIN_HMAC_KEY_BYTES} bytes")
        if ttl <= timedelta(0):
            raise ValueError("the resume token lifetime must be positive")
        self._clock = clock
        self._ttl = ttl

    def mint(self, *, tenant_id: str, subject: str, job_id: str) -> str:
        # Validate first, so a token is only ever minted for a principal we would accept back.
        Principal.for_resume(tenant_id=tenant_id, subject=subject, job_id=job_id)
        issued = int(self._clock.now().timestamp())
        claims = {
            "iss": RESUME_ISSUER,
            "aud": RESUME_AUDIENCE,
            "sub": subject,
            "tenant": tenant_id,
            "job": job_id,
            "iat": issued,
            "exp": issued + int(self._ttl.total_seconds()),
        }
        key = self._keys.keys().current
        return jwt.encode(claims, key, algorithm=HS256, headers={"typ": RESUME_TOKEN_TYPE})

    def verify(self, token: str) -> Principal:
        header, claims = self._decode(token)
        if header.get("typ") != RESUME_TOKEN_TYPE:
            raise Unauthenticated("the token is not a resume token")
        check_lifetime(claims, self._clock.now().timestamp(), timedelta(0))
        tenant, subject, job = claims["tenant"], claims["sub"], claims["job"]
        if not all(isinstance(value, str) for value in (tenant, subject, job)):
            raise Unauthenticated("the resume token's claims are malformed")
        try:
            return Principal.for_resume(tenant_id=tenant, subject=subject, job_id=job)
        except ValidationError:
            raise Unauthenticated("the resume token's claims are malformed") from None

    def _decode(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Verified by the current key or, after a rotation, by the previous one."""
        first, *others = self._keys.keys().verifying
        try:
            return self._decode_with(token, first)
        except Unauthenticated:
            for key in others:
                with contextlib.suppress(Unauthenticated):
                    return self._decode_with(token, key)
            raise

    def _decode_with(self, token: str, key: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        return _decode(
            token,
            key,
            algorithms=frozenset({HS256}),
            issuer=RESUME_ISSUER,
            audience=RESUME_AUDIENCE,
            required=_RESUME_CLAIMS,
        )


# -- either kind -------------------------------------------------------------------------------


class Authenticator:
    """The one entry point handlers use: a user token or a resume token, told apart by `typ`.

    The unverified `typ` only picks the verifier; each verifier then checks its own key,
    algorithm, `typ`, issuer and audience, so a forged `typ` can only get a token rejected.
    """

    def __init__(self, users: TokenVerifier, resumes: ResumeTokens) -> None:
        self._users = users
        self._resumes = resumes

    @property
    def resume_tokens(self) -> ResumeTokens:
        return self._resumes

    def authenticate(self, token: str) -> Principal:
        if unverified_header(token).get("typ") == RESUME_TOKEN_TYPE:
            return self._resumes.verify(token)
        return self._users.verify_user_token(token)


def token_from_websocket(
    query_params: Mapping[str, str] | None, headers: Mapping[str, str] | None
) -> WebSocketCredentials:
    """The token of a `$connect` request and the subprotocol to echo (module docstring)."""
    offered = _offered_subprotocols(headers or {})
    bearer = [p.removeprefix(WS_BEARER_PREFIX) for p in offered if p.startswith(WS_BEARER_PREFIX)]
    if len(bearer) > 1:
        raise Unauthenticated("more than one bearer subprotocol offered")
    header_token = bearer[0] if bearer else None
    query_token = (query_params or {}).get("token") or None
    if header_token and query_token and header_token != query_token:
        raise Unauthenticated("two different tokens in the query and the subprotocols")
    token = header_token or query_token
    if not token:
        raise Unauthenticated(f"no token: pass ?token= or the {WS_BEARER_PREFIX}<token> protocol")
    if header_token and WS_SUBPROTOCOL not in offered:
        raise Unauthenticated(f"offer the {WS_SUBPROTOCOL} subprotocol with the bearer one")
    return WebSocketCredentials(token, WS_SUBPROTOCOL if WS_SUBPROTOCOL in offered else None)


def bearer_token(authorization: str | None) -> str:
    """The token of an HTTP `Authorization: Bearer <token>` header."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("no bearer token in the Authorization header")
    return token.strip()


def mint_dev_token(
    secret: str | bytes,
    *,
    tenant: str,
    subject: str,
    scopes: Iterable[Scope],
    ttl: timedelta,
    clock: Clock,
    issuer: str = c.DEV_TOKEN_ISSUER,
    audience: str = c.DEFAULT_AUTH_AUDIENCE,
    tenant_claim: str = c.DEFAULT_TENANT_CLAIM,
) -> str:
    """A user token for the local stack (`tether token`), as `TokenVerifier.with_secret` wants."""
    issued = int(clock.now().timestamp())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        tenant_claim: tenant,
        "scope": " ".join(sorted(Scope(s).value for s in scopes)),
        "iat": issued,
        "exp": issued + int(ttl.total_seconds()),
    }
    return jwt.encode(claims, secret, algorithm=HS256)


# -- shared checks -----------------------------------------------------------------------------


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, for routing only: nothing in it is trusted before `_decode`."""
    if not isinstance(token, str) or not token:
        raise Unauthenticated("no token")
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthenticated("the token is too long")
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated("the token is malformed") from None


def check_lifetime(claims: Mapping[str, Any], now: float, leeway: timedelta) -> None:
    """`exp`, `nbf` and `iat` against the injected clock, with PyJWT's own comparisons."""
    slack = leeway.total_seconds()
    expires = _numeric_date(claims, "exp")
    if expires is None:
        raise Unauthenticated("the token has no exp claim")
    if expires <= now - slack:
        raise Unauthenticated("the token has expired")
    for name in ("nbf", "iat"):
        moment = _numeric_date(claims, name)
        if moment is not None and moment > now + slack:
            raise Unauthenticated("the token is not valid yet")


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthenticated(f"the token's {name} claim is not a number")
    return float(value)


def _decode(
    token: str,
    key: jwt.PyJWK | bytes,
    *,
    algorithms: frozenset[str],
    issuer: str,
    audience: str,
    required: Iterable[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Signature, algorithm, issuer and audience by PyJWT; time is checked by `check_lifetime`."""
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthenticated("the token is too long")
    options: Options = {
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "require": list(required),
        "enforce_minimum_key_length": True,
    }
    try:
        decoded = jwt.decode_complete(
            token,
            key,
            algorithms=sorted(algorithms),
            options=options,
            issuer=issuer,
            audience=audience,
        )
    except jwt.PyJWTError as error:
        raise _unauthenticated(error) from None
    return decoded["header"], decoded["payload"]


def _unauthenticated(error: jwt.PyJWTError) -> Unauthenticated:
    # Fixed reasons, never str(error): a message must not echo anything from the token.
    if isinstance(error, jwt.MissingRequiredClaimError):
        return Unauthenticated(f"the token has no {error.claim} claim")
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return Unauthenticated(reason)
    return Unauthenticated("the token is invalid")


def _scopes(claims: Mapping[str, Any], names: Iterable[str], prefix: str) -> frozenset[Scope]:
    granted: set[str] = set()
    for name in names:
        value = claims.get(name)
        if isinstance(value, str):
            granted.update(value.split())
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            granted.update(value)
        elif value is not None:
            raise Unauthenticated(f"the token's {name} claim is malformed")
    # Other scopes (openid, email, other APIs') are legitimate and simply grant nothing here.
    return frozenset(s for s in Scope if prefix + s.value in granted)


def _principal(*, tenant_id: str, subject: Any, scopes: frozenset[Scope]) -> Principal:
    if not isinstance(subject, str):
        raise Unauthenticated("the token's sub claim is malformed")
    try:
        return Principal(tenant_id=tenant_id, subject=subject, scopes=scopes)
    except ValidationError:
        raise Unauthenticated("the token's tenant or subject is not a valid identifier") from None


def _offered_subprotocols(headers: Mapping[str, str]) -> list[str]:
    values = [v for k, v in headers.items() if k.lower() == "sec-websocket-protocol"]
    return [p.strip() for value in values for p in value.split(",") if p.strip()]
