"""The local `@connections` API's signature check (infra/local/sigv4.py), against botocore's signer.

A request botocore signed with the stack's credentials passes; any change to what it signed,
another key or secret, another service, or a clock more than 5 minutes away is refused with
the code AWS answers.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Final

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.local.aws import LOCAL_CREDENTIALS, local_credentials
from infra.local.sigv4 import SignatureRefused, SignedRequest, verify

HOST: Final = "127.0.0.1:4510"
URL: Final = f"http://{HOST}/%40connections/abc123"
BODY: Final = b'{"type":"progress"}'


def signed(
    method: str = "POST",
    url: str = URL,
    body: bytes = BODY,
    *,
    key: str = LOCAL_CREDENTIALS["aws_access_key_id"],
    secret: str = LOCAL_CREDENTIALS["aws_secret_access_key"],
    service: str = "execute-api",
) -> SignedRequest:
    """What the gateway receives from a boto3 client that signed with these credentials."""
    request = AWSRequest(method=method, url=url, data=body, headers={"Host": HOST})
    SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(request)
    headers = {name.lower(): [value] for name, value in request.prepare().headers.items()}
    return SignedRequest(method=method, url=url, headers=headers, body=body)


def refusal(request: SignedRequest, now: datetime | None = None) -> str:
    with pytest.raises(SignatureRefused) as refused:
        verify(request, local_credentials(), now or datetime.now(UTC))
    return refused.value.code


def test_requests_botocore_signed_with_the_stacks_credentials_pass() -> None:
    now = datetime.now(UTC)
    for request in (
        signed(),
        signed("GET", URL + "?a=1&b=two", b""),
        signed("DELETE", body=b""),
    ):
        verify(request, local_credentials(), now)  # no refusal
    # within AWS's 5 minutes of clock skew, either way
    verify(signed(), local_credentials(), now + timedelta(minutes=4))
    verify(signed(), local_credentials(), now - timedelta(minutes=4))


def test_a_signed_request_changed_in_transit_is_refused() -> None:
    original = signed()
    headers = dict(original.headers)
    changed = [
        dataclasses.replace(original, body=b'{"type":"status","data":{"status":"completed"}}'),
        dataclasses.replace(original, url=URL.replace("abc123", "someone-else")),
        dataclasses.replace(original, method="DELETE"),
        dataclasses.replace(original, headers={**headers, "host": ["evil.example"]}),
        dataclasses.replace(original, headers={**headers, "x-amz-date": ["20200101T000000Z"]}),
    ]
    assert [refusal(request) for request in changed] == [
        "InvalidSignatureException",
        "InvalidSignatureException",
        "InvalidSignatureException",
        "InvalidSignatureException",
        "InvalidSignatureException",  # the credential's date is no longer X-Amz-Date's
    ]


def test_other_credentials_and_unsigned_requests_are_refused_with_aws_codes() -> None:
    unsigned = SignedRequest("POST", URL, {"host": [HOST]}, BODY)
    garbled = SignedRequest("POST", URL, {"host": [HOST], "authorization": ["Bearer x"]}, BODY)
    assert refusal(unsigned) == "MissingAuthenticationTokenException"
    assert refusal(garbled) == "IncompleteSignatureException"
    assert refusal(signed(secret="guessed")) == "InvalidSignatureException"
    assert refusal(signed(key="AKIASTRANGER", secret="local")) == "UnrecognizedClientException"
    assert refusal(signed(service="dynamodb")) == "InvalidSignatureException"


def test_a_signature_from_more_than_five_minutes_away_has_expired() -> None:
    request = signed()
    now = datetime.now(UTC)
    with pytest.raises(SignatureRefused, match="Signature expired"):
        verify(request, local_credentials(), now + timedelta(minutes=6))
    assert refusal(request, now - timedelta(minutes=6)) == "InvalidSignatureException"


def test_a_content_hash_that_is_not_the_bodys_is_refused() -> None:
    # Given a request whose signed x-amz-content-sha256 names another body
    request = AWSRequest(
        method="POST",
        url=URL,
        data=BODY,
        headers={"Host": HOST, "X-Amz-Content-SHA256": "0" * 64},
    )
    SigV4Auth(Credentials("local", "local"), "execute-api", "us-east-1").add_auth(request)
    headers = {name.lower(): [value] for name, value in request.prepare().headers.items()}
    # Then the signature over that hash does not vouch for this body
    assert refusal(SignedRequest("POST", URL, headers, BODY)) == "InvalidSignatureException"
