"""The auth environment of a Tether process, modelled once and read at cold start.

Keys come from `shared.constants`. Exactly one way to verify user tokens is configured: an HS256
secret (the local stack) or a JWKS URL (the cloud, e.g. a Cognito user pool). Resume tokens are
always signed with Tether's own key, which must differ from the user-token secret.
`authenticator_from` builds the `Authenticator` every entry point shares.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from jwt import PyJWKClient
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import constants as c
from shared.domain.clock import Clock
from shared.domain.keys import FixedKeys, KeySource
from shared.services.auth import (
    JWKS_ALGORITHMS,
    Authenticator,
    ResumeTokens,
    SigningKeyClient,
    TokenVerifier,
    UserTokenRules,
)

JWKS_CACHE_SECONDS = 300  # PyJWKClient refetches the key set after this, or on an unknown kid


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    hs256_secret: SecretStr | None = Field(
        default=None, alias=c.ENV_AUTH_HS256_SECRET, min_length=c.MIN_HMAC_KEY_BYTES
    )
    jwks_url: str | None = Field(default=None, alias=c.ENV_AUTH_JWKS_URL, pattern=r"^https?://")
    jwks_algorithms: str = Field(
        default="RS256",
        alias=c.ENV_AUTH_JWKS_ALGORITHMS,
        description="comma-separated, from RS256 and ES256",
    )
    issuer: str = Field(default=c.DEV_TOKEN_ISSUER, alias=c.ENV_AUTH_ISSUER, min_length=1)
    audience: str = Field(default=c.DEFAULT_AUTH_AUDIENCE, alias=c.ENV_AUTH_AUDIENCE, min_length=1)
    tenant_claim: str = Field(
        default=c.DEFAULT_TENANT_CLAIM, alias=c.ENV_AUTH_TENANT_CLAIM, min_length=1
    )
    scope_prefix: str = Field(default="", alias=c.ENV_AUTH_SCOPE_PREFIX)
    resume_signing_key: SecretStr | None = Field(
        default=None, alias=c.ENV_RESUME_SIGNING_KEY, min_length=c.MIN_HMAC_KEY_BYTES
    )
    resume_signing_key_secret_arn: str | None = Field(
        default=None, alias=c.ENV_RESUME_SIGNING_KEY_SECRET_ARN, pattern=r"^arn:"
    )
    resume_token_ttl_seconds: int = Field(
        default=c.DEFAULT_RESUME_TOKEN_TTL_SECONDS,
        alias=c.ENV_RESUME_TOKEN_TTL_SECONDS,
        ge=60,
        le=30 * 24 * 3600,
    )

    @model_validator(mode="after")
    def _one_verifier(self) -> Self:
        if (self.hs256_secret is None) == (self.jwks_url is None):
            raise ValueError(
                f"set exactly one of {c.ENV_AUTH_HS256_SECRET} or {c.ENV_AUTH_JWKS_URL}"
            )
        if not set(self.algorithms) <= JWKS_ALGORITHMS or not self.algorithms:
            raise ValueError(f"{c.ENV_AUTH_JWKS_ALGORITHMS} must name RS256 and/or ES256")
        if (self.resume_signing_key is None) == (self.resume_signing_key_secret_arn is None):
            raise ValueError(
                f"set exactly one of {c.ENV_RESUME_SIGNING_KEY} or "
                f"{c.ENV_RESUME_SIGNING_KEY_SECRET_ARN}"
            )
        if (
            self.hs256_secret is not None
            and self.resume_signing_key is not None
            and self.hs256_secret.get_secret_value() == self.resume_signing_key.get_secret_value()
        ):
            raise ValueError("the resume signing key must differ from the user-token secret")
        return self

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.jwks_algorithms.split(",") if a.strip())

    @property
    def resume_token_ttl(self) -> timedelta:
        return timedelta(seconds=self.resume_token_ttl_seconds)

    @property
    def rules(self) -> UserTokenRules:
        return UserTokenRules(
            issuer=self.issuer,
            audience=self.audience,
            tenant_claim=self.tenant_claim,
            scope_prefix=self.scope_prefix,
        )


def authenticator_from(
    settings: AuthSettings,
    clock: Clock,
    *,
    jwks_client: SigningKeyClient | None = None,
    resume_keys: KeySource | None = None,
) -> Authenticator:
    """Build once per cold start: the JWKS client's cache lives as long as the process, and
    `resume_keys` (`shared.wiring.authenticator` passes a rotating one when the key lives in
    Secrets Manager) re-reads the resume key as it rotates."""
    if settings.hs256_secret is not None:
        users = TokenVerifier.with_secret(
            settings.hs256_secret.get_secret_value(), rules=settings.rules, clock=clock
        )
    else:
        assert settings.jwks_url is not None
        client = jwks_client or PyJWKClient(
            settings.jwks_url, cache_keys=True, lifespan=JWKS_CACHE_SECONDS
        )
        users = TokenVerifier.with_jwks(
            client, rules=settings.rules, clock=clock, algorithms=settings.algorithms
        )
    if resume_keys is None:
        if settings.resume_signing_key is None:
            raise ValueError("pass the resume key's source (shared.wiring.authenticator)")
        resume_keys = FixedKeys(settings.resume_signing_key.get_secret_value().encode())
    resumes = ResumeTokens(
        resume_keys,
        clock=clock,
        ttl=settings.resume_token_ttl,
    )
    return Authenticator(users, resumes)
