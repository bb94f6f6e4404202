"""Tether's Python client: what `tether watch` runs and mobile clients copy.

Not Lambda code: it lives with the CLI and needs the `client` extra (aiohttp, keyring).
"""

from infra.client.api import ApiProblem, JobGoneError, TetherApi
from infra.client.policy import Backoff, WatchPolicy
from infra.client.tokens import FileTokenStore, KeyringTokenStore, TokenStore, token_store
from infra.client.tracker import AckWindow, JobTracker, merge_counters
from infra.client.updates import (
    Finished,
    GaveUp,
    JobGone,
    JobView,
    Progress,
    Reconnecting,
    Resynced,
    ServerError,
    StatusChanged,
    Subscribed,
    WatchUpdate,
)
from infra.client.watcher import TetherClient

__all__ = [
    "AckWindow",
    "ApiProblem",
    "Backoff",
    "FileTokenStore",
    "Finished",
    "GaveUp",
    "JobGone",
    "JobGoneError",
    "JobTracker",
    "JobView",
    "KeyringTokenStore",
    "Progress",
    "Reconnecting",
    "Resynced",
    "ServerError",
    "StatusChanged",
    "Subscribed",
    "TetherApi",
    "TetherClient",
    "TokenStore",
    "WatchPolicy",
    "WatchUpdate",
    "merge_counters",
    "token_store",
]
