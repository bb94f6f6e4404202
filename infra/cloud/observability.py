"""The `Observability` construct: alarms to an SNS topic, and a dashboard (issue 11).

Alarms, each on what means "a client is not told something it should be":
* dispatcher DLQ depth: a stream batch the dispatcher gave up on (messages never delivered
  live; clients only catch up by replay);
* JobRunner executions failed or timed out: a job died outside Tether's own failure handling;
* dispatcher errors: unhandled exceptions before batches reach the DLQ;
* HTTP API 5xx rate: share of requests the API failed (4xx are the callers');
* push failures: the `PushError` metric the Notify task emits per device SNS refused;
* launch DLQ depth: a scheduled, periodic or S3-triggered launch given up on (its job never
  started by itself);
* launcher errors: unhandled exceptions of the launcher (retried before they dead-letter);
* cleanup errors: the hourly cleanup failed (expired data stays, dead jobs stay unfinished).
What an operator does when each fires is in docs/operations.md ("When an alarm fires").
Thresholds come from the stage (`DeploymentStage.alarm_thresholds`). Every alarm notifies the
alarm topic (its ARN is a stack output: subscribe an e-mail or a chat hook to it). Missing data
is "not breaching": no traffic is not an incident.

The dashboard puts the alarms beside the Powertools metrics the handlers emit (messages
delivered, replayed, 410s dropped, pushes sent), so "is delivery healthy" is one page.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import CfnOutput, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.cloud.http_api import HttpApi
from infra.cloud.job_runner import JobRunner
from infra.cloud.schedules import Schedules
from infra.cloud.stage import AlarmThresholds
from infra.cloud.websocket_api import WebSocketApi
from shared.constants import METRICS_NAMESPACE, SERVICE_NAME

PERIOD: Final = Duration.minutes(5)
# Powertools Metrics adds the service as a dimension to every metric it publishes.
SERVICE_DIMENSION: Final = {"service": SERVICE_NAME}
# What the handlers emit (functions/*.py), by what the dashboard calls them.
DELIVERY_METRICS: Final = {
    "Messages delivered live": "MessagesDelivered",
    "Messages replayed": "MessagesReplayed",
    "Connections gone (410, dropped)": "ConnectionsGone",
    "Pushes sent": "PushSent",
    "Push errors": "PushError",
}
PUSH_FAILURE_METRIC: Final = "PushError"


def tether_metric(name: str, *, statistic: str = "Sum") -> cloudwatch.Metric:
    """A Powertools metric of the Tether handlers, summed per period."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map=SERVICE_DIMENSION,
        statistic=statistic,
        period=PERIOD,
    )


class Observability(Construct):
    """The alarm topic, one alarm per failure mode above, and the Tether dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        thresholds: AlarmThresholds,
        http_api: HttpApi,
        websocket_api: WebSocketApi,
        job_runner: JobRunner,
        schedules: Schedules,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        # SNS encryption at rest needs a customer-managed key here: CloudWatch alarms cannot
        # publish to a topic encrypted with the AWS-managed aws/sns key (its policy cannot be
        # changed to let cloudwatch.amazonaws.com use it).
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Tether: encrypts the alarm topic's messages",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="Tether alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        self._action = actions.SnsAction(self.topic)
        failed_executions = cloudwatch.MathExpression(
            expression="failed + timedOut",
            using_metrics={
                "failed": job_runner.state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                "timedOut": job_runner.state_machine.metric_timed_out(
                    period=PERIOD, statistic="Sum"
                ),
            },
            label="JobRunner executions failed or timed out",
            period=PERIOD,
        )
        server_errors = cloudwatch.MathExpression(
            # IF: no requests in a period is 0 %, not a division by zero (no data).
            expression="IF(requests > 0, 100 * errors / requests, 0)",
            using_metrics={
                "errors": http_api.api.metric_server_error(period=PERIOD, statistic="Sum"),
                "requests": http_api.api.metric_count(period=PERIOD, statistic="Sum"),
            },
            label="HTTP API 5xx (% of requests)",
            period=PERIOD,
        )
        self.alarms: dict[str, cloudwatch.Alarm] = {
            "DispatcherDlq": self._alarm(
                "DispatcherDlqDepth",
                websocket_api.dead_letters.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                thresholds.dispatcher_dlq_messages,
                "Stream batches the dispatcher gave up on wait in its DLQ: those messages were "
                "not delivered live (clients still get them by replay). Inspect and redrive.",
            ),
            "FailedExecutions": self._alarm(
                "JobRunnerFailedExecutions",
                failed_executions,
                thresholds.failed_executions,
                "JobRunner executions failed or timed out outside Tether's failure handling; "
                "their jobs stay running until the hourly cleanup fails them.",
            ),
            "DispatcherErrors": self._alarm(
                "DispatcherErrors",
                websocket_api.dispatcher_function.metric_errors(period=PERIOD, statistic="Sum"),
                thresholds.dispatcher_errors,
                "The stream dispatcher raised: live delivery is retried, then dead-lettered.",
            ),
            "Http5xx": self._alarm(
                "HttpApi5xxRate",
                server_errors,
                thresholds.http_5xx_percent,
                "The HTTP API answers 5xx to this share (%) of requests.",
            ),
            "PushFailures": self._alarm(
                "PushFailures",
                tether_metric(PUSH_FAILURE_METRIC),
                thresholds.push_failures,
                "SNS refused pushes (the Notify task's PushError metric): check the platform "
                "application credentials (APNs key, FCM service account).",
            ),
            **self._launch_alarms(thresholds, schedules),
        }
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.hours(3),
            widgets=[
                [
                    cloudwatch.AlarmStatusWidget(
                        title="Tether alarms", alarms=list(self.alarms.values()), width=24
                    )
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Delivery",
                        left=[
                            tether_metric(name).with_(label=label)
                            for label, name in DELIVERY_METRICS.items()
                        ],
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title="JobRunner executions",
                        left=[
                            job_runner.state_machine.metric_started(period=PERIOD),
                            job_runner.state_machine.metric_succeeded(period=PERIOD),
                            failed_executions,
                        ],
                        width=12,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(title="HTTP API", left=[server_errors], width=12),
                    cloudwatch.GraphWidget(
                        title="Dispatcher",
                        left=[
                            websocket_api.dispatcher_function.metric_errors(period=PERIOD),
                            websocket_api.dead_letters.metric_approximate_number_of_messages_visible(
                                period=PERIOD
                            ),
                        ],
                        width=12,
                    ),
                ],
            ],
        )
        CfnOutput(
            scope,
            "AlarmTopicArn",
            value=self.topic.topic_arn,
            description="SNS topic every Tether alarm notifies: subscribe on-call to it",
        )
        CfnOutput(
            scope,
            "DashboardName",
            value=self.dashboard.dashboard_name,
            description="CloudWatch dashboard of Tether's delivery, jobs and alarms",
        )

    def _launch_alarms(
        self, thresholds: AlarmThresholds, schedules: Schedules
    ) -> dict[str, cloudwatch.Alarm]:
        return {
            "LaunchDlq": self._alarm(
                "LaunchDlqDepth",
                schedules.launch_failures.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                thresholds.launch_dlq_messages,
                "Launches given up on wait in the launch DLQ: a scheduled, periodic or "
                "S3-triggered job did not start. Fix the cause, then redrive (docs/operations.md).",
            ),
            "LauncherErrors": self._alarm(
                "LauncherErrors",
                schedules.launcher.metric_errors(period=PERIOD, statistic="Sum"),
                thresholds.launcher_errors,
                "The launcher raised: launches are retried, then dead-lettered.",
            ),
            "CleanupErrors": self._alarm(
                "CleanupErrors",
                schedules.cleanup.metric_errors(period=PERIOD, statistic="Sum"),
                thresholds.cleanup_errors,
                "The hourly cleanup failed: expired jobs, dead executions and leaked run slots "
                "wait for its next successful run.",
            ),
        }

    def _alarm(
        self, construct_id: str, metric: cloudwatch.IMetric, threshold: float, description: str
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        return alarm
