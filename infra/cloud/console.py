"""The `WebConsole` construct: the web console (`infra/console/static`) on S3 behind CloudFront.

The same files `tether dev` serves at /console/, unchanged (no build step), in a private bucket
that only the distribution reads (origin access control), with a `config.json` beside
`index.html` naming the deployed HTTP API and WebSocket URLs (`publish`, resolved at deploy
time). The page then calls the API from the distribution's origin, so the HTTP API allows that
origin (CORS, `HttpApi(cors_origins=...)`); WebSockets are not subject to CORS.

Built in two steps to keep CloudFormation free of cycles: the distribution first (the API's CORS
configuration needs its domain), the files last (`config.json` needs the API's URL). For the
same reason the CSP names the API by its AWS domain pattern rather than its id.

The files carry no data and no secret (a user pastes a token, kept in the browser's storage);
the page is served `no-cache` with validators and every deploy invalidates the distribution, so
an update shows on the next reload.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import (
    Acknowledgment,
    Aws,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Validations,
)
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.cloud.checkov import LOG_GROUP_WITHOUT_CMK, acknowledge_checkov
from infra.cloud.lambda_function import ignore_redundant_role_dependency, nag_arn
from infra.console import CONFIG_FILE, STATIC_DIR, content_security_policy

# The HTTP API and the WebSocket API of this account and region (execute-api's own domains).
_API_DOMAIN: Final = f"*.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}"
CONSOLE_CSP: Final = content_security_policy(f"https://{_API_DOMAIN} wss://{_API_DOMAIN}")

_STATIC_ONLY: Final = (
    "The console is public static files (HTML, CSS, JS) with no data and no secret; every API "
    "call it makes is logged by the HTTP API's access log and the functions."
)


class WebConsole(Construct):
    """A private bucket, a CloudFront distribution in front of it, and (after `publish`) the
    console's files and `config.json` in the bucket."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Files",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Only copies of files in this repository: the deployment empties it on delete
            # (retain_on_delete=False below), so every stage may remove it.
            removal_policy=RemovalPolicy.DESTROY,
        )
        Validations.of(self.bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-S1",
                reason=f"{_STATIC_ONLY} Reads come only from CloudFront (origin access control).",
            )
        )
        acknowledge_checkov(
            self.bucket,
            {
                "CKV_AWS_18": f"{_STATIC_ONLY} Reads come only from CloudFront (origin access "
                "control).",
                "CKV_AWS_21": "No versioning: every object is a copy of a file in this "
                "repository, whose history is the version history; each deploy replaces all.",
            },
        )
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="Tether console: CSP limited to this region's execute-api, no framing",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=CONSOLE_CSP, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365),
                    include_subdomains=True,
                    override=True,
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Tether web console",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        for rule, reason in (
            (
                "CFR1",
                "A developer console for the operator's own users; no geographic limit "
                "applies (the API it calls authenticates every request).",
            ),
            (
                "CFR2",
                f"{_STATIC_ONLY} WAF belongs in front of the API, which has its own "
                "throttling and per-tenant limits.",
            ),
            ("CFR3", _STATIC_ONLY),
            (
                "CFR4",
                "Served on the default *.cloudfront.net certificate, for which CloudFront "
                "sets the TLS policy itself; a custom domain and certificate (TLSv1.2_2021) is a "
                "deploy-time choice the README describes.",
            ),
        ):
            Validations.of(self.distribution).acknowledge(
                Acknowledgment(id=f"AwsSolutions::AwsSolutions-{rule}", reason=reason)
            )
        # The same three choices as CFR2, CFR3 and CFR4 above, as checkov names them.
        acknowledge_checkov(
            self.distribution,
            {
                "CKV_AWS_68": f"{_STATIC_ONLY} WAF belongs in front of the API, which has its "
                "own throttling and per-tenant limits.",
                "CKV_AWS_86": _STATIC_ONLY,
                "CKV_AWS_174": "Served on the default *.cloudfront.net certificate, for which "
                "CloudFront sets the TLS policy itself; a custom domain and certificate "
                "(TLSv1.2_2021) is a deploy-time choice the README describes.",
            },
        )
        self.origin = f"https://{self.distribution.distribution_domain_name}"
        self.url = f"{self.origin}/"
        CfnOutput(scope, "ConsoleUrl", value=self.url, description="The Tether web console")

    def publish(
        self,
        *,
        http_url: str,
        ws_url: str,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
    ) -> s3deploy.BucketDeployment:
        """Put the console's files and its `config.json` (the deployed URLs) in the bucket."""
        config = {"httpUrl": http_url, "wsUrl": ws_url, "local": False}
        deploy_logs = logs.LogGroup(
            self, "DeploymentLogs", retention=log_retention, removal_policy=removal_policy
        )
        deployment = s3deploy.BucketDeployment(
            self,
            "Deployment",
            sources=[
                s3deploy.Source.asset(str(STATIC_DIR)),
                s3deploy.Source.json_data(CONFIG_FILE, config),
            ],
            destination_bucket=self.bucket,
            cache_control=[s3deploy.CacheControl.no_cache()],
            distribution=self.distribution,
            distribution_paths=["/*"],
            prune=True,
            retain_on_delete=False,
            memory_limit=256,
            log_group=deploy_logs,
        )
        acknowledge_checkov(deploy_logs, LOG_GROUP_WITHOUT_CMK)
        _acknowledge_cdk_handler(deployment, self.bucket)
        return deployment


def _acknowledge_cdk_handler(deployment: s3deploy.BucketDeployment, bucket: s3.Bucket) -> None:
    """The findings of aws-cdk-lib's own BucketDeployment function (one per stack), which
    copies the files at deploy time and never runs otherwise: its code, runtime and policy are
    CDK's, updated with the pinned aws-cdk-lib."""
    handler = deployment.handler_role.node.scope
    assert handler is not None
    ignore_redundant_role_dependency(handler)
    cdk_made = "aws-cdk-lib's BucketDeployment handler (runs only during a deploy)"
    own_objects = f"{nag_arn(handler, bucket, bucket.bucket_arn)}/*"
    findings = {
        "L1": f"{cdk_made}: aws-cdk-lib picks and updates its runtime, not Tether.",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]": f"{cdk_made}: CDK gives its role the basic execution "
        "policy (CloudWatch Logs only).",
        "IAM5[Action::s3:GetBucket*]": f"{cdk_made}: CDK's grant to read the asset bucket.",
        "IAM5[Action::s3:GetObject*]": f"{cdk_made}: CDK's grant to read the asset bucket.",
        "IAM5[Action::s3:List*]": f"{cdk_made}: CDK's grant to list the asset and console "
        "buckets (prune compares them).",
        "IAM5[Action::s3:Abort*]": f"{cdk_made}: CDK's grant to write the console bucket.",
        "IAM5[Action::s3:DeleteObject*]": f"{cdk_made}: CDK's grant to prune the console bucket.",
        "IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-"
        "<AWS::Region>/*]": f"{cdk_made}: the bootstrap asset bucket's objects, where the "
        "console's zip is uploaded.",
        f"IAM5[Resource::{own_objects}]": f"{cdk_made}: every object of the console's own "
        "bucket (it holds nothing else).",
        "IAM5[Resource::*]": f"{cdk_made}: cloudfront:CreateInvalidation/GetInvalidation, "
        "granted by CDK on every distribution, to invalidate the console after a deploy.",
    }
    for finding, reason in findings.items():
        Validations.of(handler).acknowledge(
            Acknowledgment(id=f"AwsSolutions::AwsSolutions-{finding}", reason=reason)
        )
    acknowledge_checkov(
        handler,
        {
            "CKV_AWS_115": f"{cdk_made}: one invocation per deploy, no concurrency to bound.",
            "CKV_AWS_116": f"{cdk_made}: CloudFormation invokes it and reports its failure as "
            "the deploy's; there is no asynchronous invocation to keep.",
            "CKV_AWS_117": f"{cdk_made}: it reaches only S3 and CloudFront APIs.",
            "CKV_AWS_173": f"{cdk_made}: its environment holds no secret.",
        },
    )
    policy = deployment.handler_role.node.try_find_child("DefaultPolicy")
    assert policy is not None
    acknowledge_checkov(
        policy,
        {
            "CKV_AWS_111": f"{cdk_made}: CDK's grant to invalidate the console's distribution "
            "(cloudfront:CreateInvalidation on `*`; the action takes no resource ARN)."
        },
    )
