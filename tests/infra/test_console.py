"""CDK tests of the `WebConsole` construct: the console's files on S3 behind CloudFront, the
`config.json` the deployment writes beside them, and the HTTP API's CORS for its origin."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.app import build_app
from infra.cloud.console import CONSOLE_CSP
from infra.cloud.http_api import CORS_ORIGINS_CONTEXT
from infra.cloud.packaging import BUNDLE_CONTEXT_KEY
from infra.console import CONFIG_FILE, STATIC_DIR, static_files
from tests.infra.conftest import synthesize

if TYPE_CHECKING:
    from tests.infra.conftest import SynthesizedStack

DEPLOYMENT = "Custom::CDKBucketDeployment"


def _only(stack: SynthesizedStack, resource_type: str) -> tuple[str, dict[str, Any]]:
    (found,) = stack.resources(resource_type).items()
    return found


def _console_ids(stack: SynthesizedStack) -> tuple[str, str]:
    console = stack.built.stack.console
    return (
        stack.logical_id_of_construct(console.bucket),
        stack.logical_id_of_construct(console.distribution),
    )


def test_the_files_are_private_and_only_the_distribution_reads_them(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the console's bucket and its policy
    bucket_id, distribution_id = _console_ids(dev_stack)
    bucket = dev_stack.resources("AWS::S3::Bucket")[bucket_id]["Properties"]
    (policy,) = (
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in dev_stack.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    )

    # Then public access is blocked, TLS is required and CloudFront (this distribution) is the
    # only reader, through origin access control
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    denied, allowed = policy
    assert (denied["Effect"], denied["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )
    assert allowed["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allowed["Action"] == "s3:GetObject"
    assert {"Ref": distribution_id} in allowed["Condition"]["StringEquals"]["AWS:SourceArn"][
        "Fn::Join"
    ][1]
    _, distribution = _only(dev_stack, "AWS::CloudFront::Distribution")
    (origin,) = distribution["Properties"]["DistributionConfig"]["Origins"]
    assert "OriginAccessControlId" in origin


def test_the_distribution_serves_index_html_over_https_with_a_strict_csp(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the distribution and its response headers policy
    _, distribution = _only(dev_stack, "AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    _, headers = _only(dev_stack, "AWS::CloudFront::ResponseHeadersPolicy")
    security = headers["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]

    # Then / serves index.html, HTTP redirects to HTTPS, and the page may talk only to this
    # region's execute-api (the HTTP API and the WebSocket) and cannot be framed
    assert config["DefaultRootObject"] == "index.html"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    csp = dev_stack.built.stack.resolve(CONSOLE_CSP)
    assert security["ContentSecurityPolicy"]["ContentSecurityPolicy"] == csp
    text = "".join(part if isinstance(part, str) else "<R>" for part in csp["Fn::Join"][1])
    assert "connect-src 'self' https://*.execute-api.<R>.<R> wss://*.execute-api.<R>.<R>;" in text
    assert "frame-ancestors 'none'" in text
    assert security["FrameOptions"]["FrameOption"] == "DENY"


def test_the_deployment_copies_every_console_file_and_a_config_json_of_the_deployed_urls(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the deployment custom resource and the assets synth staged for it
    _, deployment = _only(dev_stack, DEPLOYMENT)
    properties = deployment["Properties"]
    bucket_id, distribution_id = _console_ids(dev_stack)
    staged = [
        dev_stack.outdir / f"asset.{key.removesuffix('.zip')}"
        for key in properties["SourceObjectKeys"]
    ]
    files, config = staged

    # Then the first source is exactly infra/console/static
    assert sorted(p.relative_to(files) for p in files.rglob("*") if p.is_file()) == [
        p.relative_to(STATIC_DIR) for p in static_files()
    ]
    # And the second is config.json, whose markers CloudFormation fills with the two URLs
    markers = properties["SourceMarkers"][1]
    text = (config / CONFIG_FILE).read_text()
    filled = re.sub(r"<<marker:0xbaba:(\d+)>>", lambda m: f'"marker{m.group(1)}"', text)
    assert json.loads(filled) == {"httpUrl": "marker0", "wsUrl": "marker1", "local": False}
    urls = (dev_stack.built.stack.http_api.url, dev_stack.built.stack.websocket_api.url)
    for index, url in enumerate(urls):
        assert _unquoted(markers[f"<<marker:0xbaba:{index}>>"]) == dev_stack.built.stack.resolve(
            url
        )
    # And it replaces what was there, invalidates the distribution and empties the bucket on
    # delete, files served no-cache (an update shows on the next reload)
    assert properties["DestinationBucketName"] == {"Ref": bucket_id}
    assert properties["DistributionId"] == {"Ref": distribution_id}
    assert (properties["Prune"], properties["RetainOnDelete"]) == (True, False)
    assert properties["SystemMetadata"] == {"cache-control": "no-cache"}


def _cors(stack: SynthesizedStack) -> dict[str, Any]:
    api = stack.built.stack.http_api.api
    resource = stack.resources("AWS::ApiGatewayV2::Api")[stack.logical_id_of(api.api_id)]
    cors = resource["Properties"]["CorsConfiguration"]
    assert isinstance(cors, dict)
    return cors


def _unquoted(marker: dict[str, Any]) -> dict[str, Any]:
    """A marker's value without the JSON string quotes CDK puts around it."""
    parts = list(marker["Fn::Join"][1])
    assert parts[0].startswith('"')
    assert parts[-1].endswith('"')
    parts[0], parts[-1] = parts[0][1:], parts[-1][:-1]
    return {"Fn::Join": ["", parts]}


def test_the_http_api_allows_the_console_origin(dev_stack: SynthesizedStack) -> None:
    # Given the HTTP API / When synthesized
    cors = _cors(dev_stack)
    _, distribution_id = _console_ids(dev_stack)

    # Then the console's origin may call it with a bearer token and read the headers it sets
    assert cors["AllowOrigins"] == [
        {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}]]}
    ]
    assert set(cors["AllowHeaders"]) == {"authorization", "content-type"}
    assert set(cors["AllowMethods"]) == {"GET", "POST", "DELETE"}
    assert {"location", "retry-after"} <= set(cors["ExposeHeaders"])
    assert "AllowCredentials" not in cors  # tokens travel in Authorization, never in cookies


def test_more_origins_come_from_context(tmp_path: Path) -> None:
    # Given an app deployed with a web app of the user's own allowed as well
    context = {
        "stage": "dev",
        BUNDLE_CONTEXT_KEY: False,
        CORS_ORIGINS_CONTEXT: "https://app.example.com, https://admin.example.com",
    }
    stack = synthesize(build_app(context=context, outdir=str(tmp_path)), tmp_path)

    # When synthesized / Then both follow the console's origin
    cors = _cors(stack)
    assert cors["AllowOrigins"][1:] == ["https://app.example.com", "https://admin.example.com"]


def test_the_console_url_is_an_output(dev_stack: SynthesizedStack) -> None:
    outputs = dev_stack.stateless.to_json()["Outputs"]
    assert "ConsoleUrl" in outputs
