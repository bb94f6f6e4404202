"""The `Secrets` construct: the signing keys Tether generates in Secrets Manager.

Two HMAC keys, shared by every function that signs or verifies: the resume-token key (the HTTP
API issues resume tokens, the WebSocket authorizer verifies them) and the cursor key (the HTTP
API and the WebSocket handler both read the message log through signed cursors). One construct
owns them so each function receives the same ARNs and grants reach exactly these two secrets.
Functions get ARNs only and re-read the values every five minutes: the current key signs and
the previous one (AWSPREVIOUS) still verifies, so rotating a key by hand
(`aws secretsmanager put-secret-value`) reaches warm functions within five minutes without
invalidating a resume token or cursor issued before it.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.cloud.checkov import acknowledge_checkov

SIGNING_KEY_LENGTH: Final = 64


class Secrets(Construct):
    """The resume-token signing key and the cursor-signing key."""

    def __init__(
        self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        self.resume_signing_key = _generated_secret(
            self,
            "ResumeSigningKey",
            "Tether: HMAC key that signs per-job resume tokens",
            removal_policy,
        )
        self.cursor_secret = _generated_secret(
            self,
            "CursorSecret",
            "Tether: HMAC key that signs opaque pagination cursors",
            removal_policy,
        )


def _generated_secret(
    scope: Construct, construct_id: str, description: str, removal_policy: RemovalPolicy
) -> secretsmanager.Secret:
    secret = secretsmanager.Secret(
        scope,
        construct_id,
        description=description,
        # 64 letters and digits: ~380 bits, far above HS256's 256-bit minimum, and no
        # punctuation, so the value survives shells, env files and URL-safe contexts unchanged.
        generate_secret_string=secretsmanager.SecretStringGenerator(
            password_length=SIGNING_KEY_LENGTH,
            exclude_punctuation=True,
            include_space=False,
        ),
        removal_policy=removal_policy,
    )
    Validations.of(secret).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-SMG4",
            reason="Rotated by hand, not on a schedule: verifiers accept the current and the "
            "previous key and re-read both every five minutes, so `put-secret-value` with a new "
            "key invalidates nothing; only a second rotation within the resume tokens' "
            "lifetime (24 h) retires tokens the oldest key signed. A rotation Lambda for two "
            "static HMAC keys would add code and a role for no more safety.",
        )
    )
    acknowledge_checkov(
        secret,
        {
            "CKV_AWS_149": "Encrypted with the account's aws/secretsmanager key: only Tether's "
            "own functions in this account read it (their roles' grants), so a customer-managed "
            "key would add a key policy to keep in step with those grants and a monthly cost, "
            "and no cross-account sharing needs one.",
        },
    )
    return secret


def grant_key_read(secret: secretsmanager.ISecret, grantee: iam.IGrantable) -> None:
    """Let `grantee` read the key in `secret`: GetSecretValue only.

    `Secret.grant_read` adds DescribeSecret, which no function calls (the IAM parity test
    records every call); the secrets use Secrets Manager's own key, so no KMS grant is needed.
    """
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["secretsmanager:GetSecretValue"],
        resource_arns=[secret.secret_arn],
    )
