"""Auth: user tokens, resume tokens, WebSocket credentials, all with real JWTs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError

from shared import constants as c
from shared.auth_settings import AuthSettings, authenticator_from
from shared.domain.auth import Principal, Scope
from shared.domain.clock import ManualClock
from shared.domain.errors import AuthUnavailable, Forbidden, JobNotFound, Unauthenticated
from shared.services.auth import (
    RESUME_TOKEN_TYPE,
    WS_SUBPROTOCOL,
    Authenticator,
    ResumeTokens,
    TokenVerifier,
    UserTokenRules,
    bearer_token,
    mint_dev_token,
    token_from_websocket,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SECRET = "local-dev-secret-0123456789abcdef"
RESUME_KEY = "resume-signing-key-0123456789abcdef"
ISSUER = "https://issuer.example"
AUDIENCE = "tether-api"
RULES = UserTokenRules(issuer=ISSUER, audience=AUDIENCE)
KID = "key-1"


# -- helpers -----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(T0.timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "tenant": "acme",
        "scope": "jobs:read jobs:write openid",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _hs256(claims: dict[str, Any], secret: str | bytes = SECRET, **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


def _forge(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token PyJWT would refuse to create: alg none, or HS256 keyed with a PEM."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


class FakeJwks:
    """Stands in for `jwt.PyJWKClient`: the same lookup, no network."""

    def __init__(self, *keys: jwt.PyJWK, reachable: bool = True) -> None:
        self._keys = {key.key_id: key for key in keys}
        self._reachable = reachable
        self.lookups = 0

    def get_signing_key(self, kid: str) -> jwt.PyJWK:
        self.lookups += 1
        if not self._reachable:
            raise jwt.PyJWKClientConnectionError("Fail to fetch data from the url")
        if kid not in self._keys:
            raise jwt.PyJWKClientError(f'Unable to find a signing key that matches: "{kid}"')
        return self._keys[kid]


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def public_jwk(rsa_key: rsa.RSAPrivateKey) -> jwt.PyJWK:
    data = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    return jwt.PyJWK({**data, "kid": KID, "alg": "RS256", "use": "sig"})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def local(clock: ManualClock) -> TokenVerifier:
    return TokenVerifier.with_secret(SECRET, rules=RULES, clock=clock)


@pytest.fixture
def cloud(clock: ManualClock, public_jwk: jwt.PyJWK) -> TokenVerifier:
    return TokenVerifier.with_jwks(FakeJwks(public_jwk), rules=RULES, clock=clock)


@pytest.fixture
def resumes(clock: ManualClock) -> ResumeTokens:
    return ResumeTokens(RESUME_KEY, clock=clock)


@pytest.fixture
def auth(local: TokenVerifier, resumes: ResumeTokens) -> Authenticator:
    return Authenticator(local, resumes)


def _rejected(verify: Any, token: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        verify(token)
    # No message, reason or repr of the error may carry the token or its signature back.
    signature = token.rsplit(".", 1)[-1]
    for text in (str(caught.value), caught.value.message, repr(caught.value)):
        assert token not in text
        assert len(signature) < 8 or signature not in text
    return caught.value


# -- user tokens: local HS256 ------------------------------------------------------------------


def test_a_valid_hs256_token_gives_its_tenant_subject_and_known_scopes(
    local: TokenVerifier,
) -> None:
    # Given a token signed with the local secret
    token = _hs256(_claims())
    # When it is verified
    principal = local.verify_user_token(token)
    # Then the principal carries its claims; "openid" grants nothing here
    assert principal == Principal(
        tenant_id="acme", subject="user-1", scopes=frozenset({Scope.JOBS_READ, Scope.JOBS_WRITE})
    )
    assert not principal.is_resume


def test_an_alg_none_token_is_rejected(local: TokenVerifier, auth: Authenticator) -> None:
    # Given an unsigned token claiming alg "none"
    token = _forge({"alg": "none", "typ": "JWT"}, _claims(), key=None)
    # When / Then both the verifier and the authenticator refuse it
    assert "algorithm" in _rejected(local.verify_user_token, token).reason
    _rejected(auth.authenticate, token)


def test_a_token_signed_with_another_secret_is_rejected(local: TokenVerifier) -> None:
    token = _hs256(_claims(), secret="another-secret-0123456789abcdefgh")
    assert "signature" in _rejected(local.verify_user_token, token).reason


def test_a_tampered_payload_is_rejected(local: TokenVerifier) -> None:
    # Given a valid token whose payload is swapped for another tenant's
    header, _, signature = _hs256(_claims()).split(".")
    payload = _b64(json.dumps(_claims(tenant="evil")).encode())
    # When / Then the signature no longer matches
    _rejected(local.verify_user_token, f"{header}.{payload}.{signature}")


def test_expiry_follows_the_injected_clock(local: TokenVerifier, clock: ManualClock) -> None:
    # Given a token valid for one hour from T0
    token = _hs256(_claims())
    # When the clock is one second before expiry, Then it is accepted
    clock.advance(seconds=3599)
    local.verify_user_token(token)
    # When the clock reaches exp, Then it is expired (no sleeping: the clock moved)
    clock.advance(seconds=1)
    assert "expired" in _rejected(local.verify_user_token, token).reason


def test_a_token_from_the_future_is_rejected(local: TokenVerifier) -> None:
    later = int((T0 + timedelta(hours=1)).timestamp())
    token = _hs256(_claims(nbf=later, iat=later, exp=later + 60))
    assert "not valid yet" in _rejected(local.verify_user_token, token).reason


def test_leeway_tolerates_small_clock_skew(clock: ManualClock) -> None:
    verifier = TokenVerifier.with_secret(
        SECRET,
        rules=UserTokenRules(issuer=ISSUER, audience=AUDIENCE, leeway=timedelta(seconds=30)),
        clock=clock,
    )
    token = _hs256(_claims())
    clock.advance(seconds=3600 + 29)
    verifier.verify_user_token(token)
    clock.advance(seconds=1)
    _rejected(verifier.verify_user_token, token)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"aud": None}, "aud"),
        ({"iss": None}, "iss"),
        ({"exp": None}, "exp"),
        ({"sub": None}, "sub"),
        ({"tenant": None}, "tenant"),
        ({"tenant": ""}, "tenant"),
        ({"tenant": "bad tenant/../x"}, "identifier"),
        ({"exp": "tomorrow"}, "exp"),
        ({"scope": {"jobs:read": True}}, "scope"),
    ],
)
def test_tokens_with_wrong_or_missing_claims_are_rejected(
    local: TokenVerifier, overrides: dict[str, Any], reason: str
) -> None:
    # Given a correctly signed token with one claim wrong or missing
    token = _hs256(_claims(**overrides))
    # When / Then it is a 401 saying which claim
    assert reason in _rejected(local.verify_user_token, token).reason


@pytest.mark.parametrize("garbage", ["", "abc", "a.b", "a.b.c", "x" * 9000, "Bearer x.y.z"])
def test_malformed_tokens_are_rejected(auth: Authenticator, garbage: str) -> None:
    with pytest.raises(Unauthenticated):
        auth.authenticate(garbage)


def test_a_missing_scope_is_a_403_on_require(local: TokenVerifier) -> None:
    # Given a read-only token
    principal = local.verify_user_token(_hs256(_claims(scope="jobs:read")))
    # When write is required, Then it is forbidden, with the scope named
    principal.require(Scope.JOBS_READ)
    with pytest.raises(Forbidden) as caught:
        principal.require(Scope.JOBS_WRITE)
    assert caught.value.code == "forbidden"
    assert "jobs:write" in caught.value.message


def test_scopes_may_come_as_an_scp_list_and_with_a_prefix(clock: ManualClock) -> None:
    # Given Cognito-style settings: a custom tenant claim and resource-server scope names
    rules = UserTokenRules(
        issuer=ISSUER, audience=AUDIENCE, tenant_claim="custom:tenant", scope_prefix="tether/"
    )
    verifier = TokenVerifier.with_secret(SECRET, rules=rules, clock=clock)
    token = _hs256(
        _claims(
            tenant=None,
            scope=None,
            scp=["tether/jobs:read", "jobs:write"],
            **{"custom:tenant": "t9"},
        )
    )
    # When verified, Then only the prefixed scope counts
    principal = verifier.verify_user_token(token)
    assert (principal.tenant_id, principal.scopes) == ("t9", frozenset({Scope.JOBS_READ}))


def test_a_token_without_scopes_is_valid_but_grants_nothing(local: TokenVerifier) -> None:
    principal = local.verify_user_token(_hs256(_claims(scope=None)))
    assert principal.scopes == frozenset()


# -- user tokens: cloud JWKS -------------------------------------------------------------------


def _rs256(key: rsa.RSAPrivateKey, claims: dict[str, Any], kid: str | None = KID) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid} if kid else None)


def test_an_rs256_token_verifies_against_the_jwks(
    cloud: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    principal = cloud.verify_user_token(_rs256(rsa_key, _claims(scope="jobs:read")))
    assert (principal.tenant_id, principal.scopes) == ("acme", frozenset({Scope.JOBS_READ}))


def test_an_unknown_or_missing_kid_is_rejected(
    cloud: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    assert "unknown" in _rejected(cloud.verify_user_token, _rs256(rsa_key, _claims(), "k9")).reason
    assert "kid" in _rejected(cloud.verify_user_token, _rs256(rsa_key, _claims(), None)).reason


def test_a_token_signed_by_another_rsa_key_is_rejected(cloud: TokenVerifier) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _rejected(cloud.verify_user_token, _rs256(stranger, _claims()))


def test_hs256_keyed_with_the_public_pem_is_rejected(
    cloud: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    # Given the algorithm-confusion attack: HS256 with the issuer's public key PEM as secret
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = _forge({"alg": "HS256", "typ": "JWT", "kid": KID}, _claims(), key=pem)
    # When / Then the JWKS verifier never accepts a symmetric algorithm
    assert "algorithm" in _rejected(cloud.verify_user_token, token).reason


def test_a_disallowed_algorithm_is_refused_before_any_key_lookup(
    clock: ManualClock, public_jwk: jwt.PyJWK
) -> None:
    # Given a JWKS verifier and an unsigned token naming a real kid
    jwks = FakeJwks(public_jwk)
    verifier = TokenVerifier.with_jwks(jwks, rules=RULES, clock=clock)
    token = _forge({"alg": "none", "kid": KID}, _claims(), key=None)
    # When / Then it is refused without touching the key set (no JWKS refresh on junk)
    assert "algorithm" in _rejected(verifier.verify_user_token, token).reason
    assert jwks.lookups == 0


def test_an_unreachable_jwks_is_unavailable_not_unauthenticated(
    clock: ManualClock, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = TokenVerifier.with_jwks(FakeJwks(reachable=False), rules=RULES, clock=clock)
    with pytest.raises(AuthUnavailable):
        verifier.verify_user_token(_rs256(rsa_key, _claims()))


@pytest.mark.parametrize("algorithms", [(), ("none",), ("HS256",), ("RS256", "HS256")])
def test_a_jwks_verifier_refuses_unsafe_algorithms(
    clock: ManualClock, public_jwk: jwt.PyJWK, algorithms: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match="algorithms"):
        TokenVerifier.with_jwks(
            FakeJwks(public_jwk), rules=RULES, clock=clock, algorithms=algorithms
        )


def test_a_short_hs256_secret_is_refused(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="at least"):
        TokenVerifier.with_secret("short", rules=RULES, clock=clock)


# -- resume tokens -----------------------------------------------------------------------------


def test_a_resume_token_round_trips_to_a_read_only_principal_for_one_job(
    resumes: ResumeTokens,
) -> None:
    # Given a resume token minted for job j1
    token = resumes.mint(tenant_id="acme", subject="user-1", job_id="j1")
    # When it is verified
    principal = resumes.verify(token)
    # Then it reaches j1 only, read-only
    assert (principal.tenant_id, principal.subject, principal.job_id) == ("acme", "user-1", "j1")
    assert principal.is_resume
    assert principal.can_access("j1")
    assert not principal.can_access("j2")
    principal.authorize(Scope.JOBS_READ, "j1")
    with pytest.raises(Forbidden):
        principal.authorize(Scope.JOBS_WRITE, "j1")
    # And another job is "not found", never 403, whatever the scope asked
    for scope in Scope:
        with pytest.raises(JobNotFound):
            principal.authorize(scope, "j2")


def test_a_resume_token_expires_after_24_hours_by_default(
    resumes: ResumeTokens, clock: ManualClock
) -> None:
    token = resumes.mint(tenant_id="acme", subject="user-1", job_id="j1")
    clock.advance(hours=24, seconds=-1)
    resumes.verify(token)
    clock.advance(seconds=1)
    assert "expired" in _rejected(resumes.verify, token).reason


def test_the_resume_token_lifetime_is_configurable(clock: ManualClock) -> None:
    short = ResumeTokens(RESUME_KEY, clock=clock, ttl=timedelta(minutes=5))
    token = short.mint(tenant_id="acme", subject="user-1", job_id="j1")
    clock.advance(minutes=5)
    _rejected(short.verify, token)


def test_a_resume_token_is_not_a_user_token_even_with_one_shared_key(
    clock: ManualClock,
) -> None:
    # Given a (misconfigured) deployment using one key for both kinds
    users = TokenVerifier.with_secret(SECRET, rules=RULES, clock=clock)
    resumes = ResumeTokens(SECRET, clock=clock)
    resume_token = resumes.mint(tenant_id="acme", subject="user-1", job_id="j1")
    user_token = _hs256(_claims())
    # When / Then each verifier refuses the other kind
    _rejected(users.verify_user_token, resume_token)
    _rejected(resumes.verify, user_token)
    # And a user token dressed up with the resume typ is still not a resume token
    _rejected(resumes.verify, _hs256(_claims(), typ=RESUME_TOKEN_TYPE))


def test_a_resume_token_without_its_typ_is_rejected(resumes: ResumeTokens) -> None:
    # Given resume claims signed with the right key but no explicit type
    claims = {
        "iss": "tether",
        "aud": "tether:resume",
        "sub": "user-1",
        "tenant": "acme",
        "job": "j1",
        "iat": int(T0.timestamp()),
        "exp": int(T0.timestamp()) + 60,
    }
    # When / Then it is refused: the marker is part of what a resume token is
    assert "not a resume token" in _rejected(resumes.verify, _hs256(claims, RESUME_KEY)).reason


def test_a_resume_principal_can_never_hold_write() -> None:
    with pytest.raises(ValidationError):
        Principal(tenant_id="acme", subject="u", scopes=frozenset(Scope), job_id="j1")


# -- either kind -------------------------------------------------------------------------------


def test_the_authenticator_accepts_both_kinds(auth: Authenticator, resumes: ResumeTokens) -> None:
    user = auth.authenticate(_hs256(_claims()))
    resume = auth.authenticate(resumes.mint(tenant_id="acme", subject="u1", job_id="j1"))
    assert (user.job_id, resume.job_id) == (None, "j1")


def test_a_user_token_cannot_pass_as_a_resume_token_by_its_typ(auth: Authenticator) -> None:
    # Given a user token that claims the resume typ (routing follows it to the resume verifier)
    token = _hs256(_claims(), typ=RESUME_TOKEN_TYPE)
    # When / Then the resume verifier's own key and audience refuse it
    _rejected(auth.authenticate, token)


def test_dev_tokens_verify_with_the_default_local_rules(clock: ManualClock) -> None:
    # Given what `tether token` mints
    token = mint_dev_token(
        SECRET,
        tenant="acme",
        subject="dev",
        scopes=[Scope.JOBS_WRITE, Scope.JOBS_READ],
        ttl=timedelta(hours=1),
        clock=clock,
    )
    rules = UserTokenRules(issuer=c.DEV_TOKEN_ISSUER, audience=c.DEFAULT_AUTH_AUDIENCE)
    # When verified by the local verifier, Then it is accepted until its ttl
    principal = TokenVerifier.with_secret(SECRET, rules=rules, clock=clock).verify_user_token(token)
    assert principal.scopes == frozenset(Scope)
    clock.advance(hours=1)
    _rejected(TokenVerifier.with_secret(SECRET, rules=rules, clock=clock).verify_user_token, token)


# -- settings ----------------------------------------------------------------------------------


def test_settings_build_a_local_authenticator(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    # Given the local stack's environment
    monkeypatch.setenv(c.ENV_AUTH_HS256_SECRET, SECRET)
    monkeypatch.setenv(c.ENV_RESUME_SIGNING_KEY, RESUME_KEY)
    monkeypatch.setenv(c.ENV_RESUME_TOKEN_TTL_SECONDS, "3600")
    settings = AuthSettings()
    # When the authenticator is built
    auth = authenticator_from(settings, clock)
    # Then it accepts dev tokens and its own resume tokens, with the configured lifetime
    dev = mint_dev_token(
        SECRET,
        tenant="acme",
        subject="dev",
        scopes=[Scope.JOBS_READ],
        ttl=timedelta(hours=8),
        clock=clock,
    )
    assert auth.authenticate(dev).tenant_id == "acme"
    resume = auth.resume_tokens.mint(tenant_id="acme", subject="dev", job_id="j1")
    clock.advance(hours=1)
    _rejected(auth.authenticate, resume)


def test_settings_build_a_jwks_authenticator(
    clock: ManualClock, public_jwk: jwt.PyJWK, rsa_key: rsa.RSAPrivateKey
) -> None:
    settings = AuthSettings.model_validate(
        {
            c.ENV_AUTH_JWKS_URL: "https://issuer.example/.well-known/jwks.json",
            c.ENV_AUTH_ISSUER: ISSUER,
            c.ENV_AUTH_TENANT_CLAIM: "custom:tenant",
            c.ENV_RESUME_SIGNING_KEY: RESUME_KEY,
        }
    )
    auth = authenticator_from(settings, clock, jwks_client=FakeJwks(public_jwk))
    token = _rs256(rsa_key, _claims(tenant=None, **{"custom:tenant": "t9"}))
    assert auth.authenticate(token).tenant_id == "t9"


@pytest.mark.parametrize(
    "env",
    [
        {},  # neither way to verify user tokens
        {c.ENV_AUTH_HS256_SECRET: SECRET, c.ENV_AUTH_JWKS_URL: "https://x.example/jwks"},
        {c.ENV_AUTH_HS256_SECRET: RESUME_KEY},  # same key for both kinds
        {c.ENV_AUTH_HS256_SECRET: "too-short"},
        {c.ENV_AUTH_JWKS_URL: "https://x.example/jwks", c.ENV_AUTH_JWKS_ALGORITHMS: "HS256"},
        {c.ENV_AUTH_JWKS_URL: "file:///etc/passwd"},
    ],
)
def test_settings_refuse_unsafe_configurations(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        AuthSettings.model_validate({c.ENV_RESUME_SIGNING_KEY: RESUME_KEY, **env})


# -- extracting tokens -------------------------------------------------------------------------


def test_websocket_token_from_the_query() -> None:
    assert token_from_websocket({"token": "a.b.c"}, {}).token == "a.b.c"


def test_websocket_token_from_the_subprotocols_echoes_only_tether() -> None:
    # Given a browser offering the Tether protocol and the bearer entry
    headers = {"sec-websocket-protocol": f"{WS_SUBPROTOCOL}, bearer.a.b.c"}
    # When extracted
    credentials = token_from_websocket(None, headers)
    # Then the token is found and only tether.v2 is echoed, never the token
    assert (credentials.token, credentials.subprotocol) == ("a.b.c", WS_SUBPROTOCOL)


def test_a_query_token_with_the_protocol_offered_still_echoes_it() -> None:
    credentials = token_from_websocket({"token": "t"}, {"Sec-WebSocket-Protocol": WS_SUBPROTOCOL})
    assert credentials.subprotocol == WS_SUBPROTOCOL


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        (None, None),
        ({"token": ""}, {}),
        (None, {"Sec-WebSocket-Protocol": WS_SUBPROTOCOL}),
        (None, {"Sec-WebSocket-Protocol": "bearer.a.b.c"}),  # no tether.v2 to echo
        (None, {"Sec-WebSocket-Protocol": f"{WS_SUBPROTOCOL}, bearer.a, bearer.b"}),
        ({"token": "x.y.z"}, {"Sec-WebSocket-Protocol": f"{WS_SUBPROTOCOL}, bearer.a.b.c"}),
    ],
)
def test_websocket_credentials_that_are_missing_or_ambiguous_are_refused(
    query: dict[str, str] | None, headers: dict[str, str] | None
) -> None:
    with pytest.raises(Unauthenticated):
        token_from_websocket(query, headers)


def test_bearer_token_from_the_authorization_header() -> None:
    assert bearer_token("Bearer a.b.c") == "a.b.c"
    assert bearer_token("bearer  a.b.c ") == "a.b.c"
    for bad in (None, "", "Basic abc", "Bearer "):
        with pytest.raises(Unauthenticated):
            bearer_token(bad)
