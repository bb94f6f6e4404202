"""Names shared by the CDK app and the Lambda handlers' settings, so infra and code cannot drift.

Every environment variable a handler reads is named here once; the CDK constructs set exactly
these keys and `shared.settings.TetherSettings` reads exactly these keys.
"""

from typing import Final

SERVICE_NAME: Final = "tether"

# Environment variable keys (CDK sets them, TetherSettings reads them).
ENV_JOBS_TABLE: Final = "TETHER_JOBS_TABLE"
ENV_MESSAGES_TABLE: Final = "TETHER_MESSAGES_TABLE"
ENV_CONNECTIONS_TABLE: Final = "TETHER_CONNECTIONS_TABLE"
ENV_DEVICES_TABLE: Final = "TETHER_DEVICES_TABLE"
ENV_IDEMPOTENCY_TABLE: Final = "TETHER_IDEMPOTENCY_TABLE"
ENV_LIMITS_TABLE: Final = "TETHER_LIMITS_TABLE"
ENV_CURSOR_SECRET: Final = "TETHER_CURSOR_SECRET"  # noqa: S105 - the variable's name, not a secret
ENV_PROGRESS_MIN_INTERVAL_MS: Final = "TETHER_PROGRESS_MIN_INTERVAL_MS"
ENV_AWS_ENDPOINT_URL: Final = "AWS_ENDPOINT_URL"
ENV_MAX_BODY_BYTES: Final = "TETHER_MAX_BODY_BYTES"
ENV_WRITE_RATE_PER_MINUTE: Final = "TETHER_WRITE_RATE_PER_MINUTE"
ENV_IDEMPOTENCY_TTL_SECONDS: Final = "TETHER_IDEMPOTENCY_TTL_SECONDS"

# Retention (docs/architecture.md, docs/protocol.md).
MESSAGE_TTL_SECONDS: Final = 24 * 3600
TERMINAL_JOB_TTL_SECONDS: Final = 30 * 24 * 3600

# HTTP API limits: request bodies, writes per tenant, how long a key is remembered.
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024
DEFAULT_WRITE_RATE_PER_MINUTE: Final = 120
DEFAULT_IDEMPOTENCY_TTL_SECONDS: Final = 24 * 3600

# Progress coalescing (docs/protocol.md): at most one progress message per job per this interval.
DEFAULT_PROGRESS_MIN_INTERVAL_MS: Final = 250

# Auth: user tokens are verified with an HS256 secret (local) or a JWKS URL (cloud).
ENV_AUTH_HS256_SECRET: Final = "TETHER_AUTH_HS256_SECRET"  # noqa: S105 - a variable's name
ENV_AUTH_JWKS_URL: Final = "TETHER_AUTH_JWKS_URL"
ENV_AUTH_JWKS_ALGORITHMS: Final = "TETHER_AUTH_JWKS_ALGORITHMS"
ENV_AUTH_ISSUER: Final = "TETHER_AUTH_ISSUER"
ENV_AUTH_AUDIENCE: Final = "TETHER_AUTH_AUDIENCE"
ENV_AUTH_TENANT_CLAIM: Final = "TETHER_AUTH_TENANT_CLAIM"
ENV_AUTH_SCOPE_PREFIX: Final = "TETHER_AUTH_SCOPE_PREFIX"
ENV_RESUME_SIGNING_KEY: Final = "TETHER_RESUME_SIGNING_KEY"
# In the cloud the key lives in Secrets Manager; handlers re-read it every five minutes
# (`shared.adapters.secrets.RotatingSecret`), so a rotation reaches warm functions.
ENV_RESUME_SIGNING_KEY_SECRET_ARN: Final = "TETHER_RESUME_SIGNING_KEY_SECRET_ARN"  # noqa: S105
ENV_RESUME_TOKEN_TTL_SECONDS: Final = "TETHER_RESUME_TOKEN_TTL_SECONDS"  # noqa: S105 - a name

# What `tether token` mints and the local stack accepts; the cloud sets its own issuer/audience.
DEV_TOKEN_ISSUER: Final = "tether-local"  # noqa: S105 - an issuer name, not a secret
DEFAULT_AUTH_AUDIENCE: Final = "tether-api"
DEFAULT_TENANT_CLAIM: Final = "tenant"
DEFAULT_RESUME_TOKEN_TTL_SECONDS: Final = 24 * 3600
MIN_HMAC_KEY_BYTES: Final = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash

# Appended for the CDK HTTP API (infra/cloud/http_api.py). In the cloud the cursor-signing
# secret lives in Secrets Manager like the resume key, and is re-read the same way.
ENV_CURSOR_SECRET_ARN: Final = "TETHER_CURSOR_SECRET_ARN"  # noqa: S105 - a variable's name
# Powertools reads these two itself; the values are Tether's service name and metrics namespace.
ENV_POWERTOOLS_SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
ENV_POWERTOOLS_METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
METRICS_NAMESPACE: Final = "Tether"

# Live delivery: where the dispatcher posts frames. In the cloud the WebSocket
# stage's management endpoint, https://{apiId}.execute-api.{region}.amazonaws.com/{stage};
# locally the gateway emulator's URL.
ENV_WEBSOCKET_MANAGEMENT_URL: Final = "TETHER_WEBSOCKET_MANAGEMENT_URL"

# JobRunner (docs/architecture.md): the state machine the launcher starts and how many items one
# ProcessBatch task handles. 100 keeps a 10,000-item job at ~200 state transitions and a batch
# far below Lambda's 15 minutes for any built-in job type.
ENV_STATE_MACHINE_ARN: Final = "TETHER_STATE_MACHINE_ARN"
ENV_BATCH_SIZE: Final = "TETHER_BATCH_SIZE"
DEFAULT_BATCH_SIZE: Final = 100

# Continue-as-new (issue 6): batches one JobRunner execution runs before the job continues in
# the next one, well below Step Functions Standard's 25,000 history events.
ENV_BATCHES_PER_EXECUTION: Final = "TETHER_BATCHES_PER_EXECUTION"
DEFAULT_BATCHES_PER_EXECUTION: Final = 1000

# History events: Standard fails an execution that reaches 25,000 of them, and a batch count
# alone does not bound them (a clean batch costs 7, a failed attempt 14: a batch that fails
# twice costs 35). So each execution also carries an estimate of the events it used
# (`RunState.events`) and hands the job over once it reaches `DEFAULT_EVENTS_PER_EXECUTION`.
# What Step Functions records (and moto's interpreter, measured, records the same):
STANDARD_MAX_HISTORY_EVENTS: Final = 25_000
# a Lambda task: TaskStateEntered, LambdaFunctionScheduled, -Started, -Succeeded|-Failed,
# TaskStateExited; AwaitResume (.waitForTaskToken) adds TaskSubmitted.
EVENTS_TASK: Final = 5
EVENTS_CALLBACK_TASK: Final = 6
# a Choice, a Wait or a Pass: entered, exited.
EVENTS_CHOICE: Final = 2
EVENTS_WAIT: Final = 2
# The tasks count every state of the loop (a clean batch: ProcessBatch + Control = 7; a failed
# attempt: the failed task, RecordFailure, Control, Backoff = 14; a pause: ProcessBatch, Control,
# AwaitResume = 13). Outside the estimate, but bounded: ExecutionStarted, and the end after the
# last check (Finalize 5, its fallback 5, PauseExpired 2, PushDecision 2, PushGrace 2, Notify
# 5, Done 2, ExecutionSucceeded 1).
EVENTS_OUTSIDE_ESTIMATE: Final = 1 + 5 + 5 + 2 + 2 + 2 + 5 + 2 + 1
# The estimate is checked before every batch and every pause; the most it can grow past the
# budget before the next check is one failed attempt.
EVENTS_LARGEST_STEP: Final = 14
# So an execution ends at most 20,000 + 14 + 25 events into its history, plus what the tasks
# cannot see: Lambda-service retries (Retry on Lambda.ServiceException and the like, 3 events
# each, at most 6 per task). The 4,961 events left to 25,000 are 1,653 such retries in one
# execution, where one is already rare.
DEFAULT_EVENTS_PER_EXECUTION: Final = 20_000

# Executions one run of a job may start before it fails `launch_failed`: a relaunch after its
# execution closed takes the run's next name (a closed name stays taken 90 days).
MAX_EXECUTION_ATTEMPTS: Final = 20

# Schedules, triggers, priorities and cleanup (docs/architecture.md).
ENV_SCHEDULES_TABLE: Final = "TETHER_SCHEDULES_TABLE"
# EventBridge Scheduler: the group Tether's schedules live in, the role Scheduler assumes to
# invoke the launcher, and the launcher function every schedule targets.
ENV_SCHEDULER_GROUP: Final = "TETHER_SCHEDULER_GROUP"
ENV_SCHEDULER_ROLE_ARN: Final = "TETHER_SCHEDULER_ROLE_ARN"
ENV_LAUNCHER_ARN: Final = "TETHER_LAUNCHER_ARN"
# The SQS queue Scheduler sends a launch to once its retries are over (unset locally).
ENV_SCHEDULER_DLQ_ARN: Final = "TETHER_SCHEDULER_DLQ_ARN"
DEFAULT_SCHEDULER_GROUP: Final = "tether"
# How Scheduler retries a launch it could not deliver (a launch is idempotent) before it gives
# the event to the schedules' dead-letter queue.
SCHEDULER_MAX_EVENT_AGE_SECONDS: Final = 3600
SCHEDULER_MAX_RETRY_ATTEMPTS: Final = 10
# A `scheduled` job still waiting this long after its `scheduledFor` was never launched
# (Scheduler's retries are over): the cleanup starts it, late.
SCHEDULED_JOB_OVERDUE_SECONDS: Final = SCHEDULER_MAX_EVENT_AGE_SECONDS + 5 * 60
# Per-tenant concurrency: jobs holding a run slot at once (a tenant's slot item may override).
ENV_MAX_RUNNING_PER_TENANT: Final = "TETHER_MAX_RUNNING_PER_TENANT"
DEFAULT_MAX_RUNNING_PER_TENANT: Final = 10
# The hourly cleanup: how often it may run, how long its lease lasts (its Lambda's timeout),
# and the owner of jobs started by S3 imports.
ENV_CLEANUP_INTERVAL_SECONDS: Final = "TETHER_CLEANUP_INTERVAL_SECONDS"
DEFAULT_CLEANUP_INTERVAL_SECONDS: Final = 3600
CLEANUP_LEASE_SECONDS: Final = 15 * 60
# EventBridge delivers an hourly rule's events within about a minute of the hour; a run that
# early still counts as the next interval's.
CLEANUP_INTERVAL_SLACK_SECONDS: Final = 60
IMPORTS_PREFIX: Final = "imports/"
# The bucket csv_import jobs read from (the stateful stack's import bucket): a job may read only
# its tenant's `imports/{tenantId}/` there. Unset, no csv_import job is accepted.
ENV_IMPORT_BUCKET: Final = "TETHER_IMPORT_BUCKET"
IMPORT_OWNER: Final = "trigger:s3"
# Push: the SNS platform application of each platform (CloudFormation has no
# resource for them: they come from configuration) and how long the JobRunner waits for a live
# client to acknowledge a job's end before it pushes.
ENV_PUSH_APNS_ARN: Final = "TETHER_PUSH_APNS_ARN"
ENV_PUSH_APNS_SANDBOX_ARN: Final = "TETHER_PUSH_APNS_SANDBOX_ARN"
ENV_PUSH_FCM_ARN: Final = "TETHER_PUSH_FCM_ARN"
ENV_PUSH_GRACE_SECONDS: Final = "TETHER_PUSH_GRACE_SECONDS"
DEFAULT_PUSH_GRACE_SECONDS: Final = 15
