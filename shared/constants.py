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
ENV_CURSOR_SECRET: Final = "TETHER_CURSOR_SECRET"  # noqa: S105 - the variable's name, not a secret
ENV_PROGRESS_MIN_INTERVAL_MS: Final = "TETHER_PROGRESS_MIN_INTERVAL_MS"
ENV_AWS_ENDPOINT_URL: Final = "AWS_ENDPOINT_URL"

# Retention (DESIGN §3, §4).
MESSAGE_TTL_SECONDS: Final = 24 * 3600
TERMINAL_JOB_TTL_SECONDS: Final = 30 * 24 * 3600

# Progress coalescing (DESIGN §4): at most one progress message per job per this interval.
DEFAULT_PROGRESS_MIN_INTERVAL_MS: Final = 250
