"""Who is calling (docs/http-api.md, Auth): the verified principal every use case acts for.

A `Principal` comes only out of `shared.services.auth`, after a token was verified. It carries the
tenant every key and query is scoped by, and the scopes the token grants. A principal made from a
resume token is pinned to one job: it may read that job and subscribe to it, nothing else. A job
outside a principal's reach answers "not found", exactly like another tenant's job, so callers
check `require_access` before `require` (see `authorize`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, model_validator

from shared.domain.errors import Forbidden, JobNotFound
from shared.domain.models import Identifier


class Scope(StrEnum):
    JOBS_READ = "jobs:read"
    JOBS_WRITE = "jobs:write"


RESUME_SCOPES = frozenset({Scope.JOBS_READ})


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: Identifier
    subject: Identifier
    scopes: frozenset[Scope] = frozenset()
    job_id: Identifier | None = None
    """Set only for a resume token: the one job this principal may read and subscribe to."""

    @model_validator(mode="after")
    def _resume_tokens_only_read(self) -> Self:
        if self.job_id is not None and self.scopes != RESUME_SCOPES:
            raise ValueError("a principal pinned to one job may only hold jobs:read")
        return self

    @classmethod
    def for_resume(cls, *, tenant_id: str, subject: str, job_id: str) -> Principal:
        return cls(tenant_id=tenant_id, subject=subject, scopes=RESUME_SCOPES, job_id=job_id)

    @property
    def is_resume(self) -> bool:
        return self.job_id is not None

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes

    def require(self, scope: Scope) -> None:
        """Raises `Forbidden` (403) when the token does not grant `scope`."""
        if scope not in self.scopes:
            raise Forbidden(scope.value)

    def can_access(self, job_id: str) -> bool:
        """Whether `job_id` is within reach; the tenant check is the store's (keys are scoped)."""
        return self.job_id is None or self.job_id == job_id

    def require_access(self, job_id: str) -> None:
        """Raises `JobNotFound` (404, never 403) for a job outside a resume token's one job."""
        if not self.can_access(job_id):
            raise JobNotFound(job_id)

    def authorize(self, scope: Scope, job_id: str) -> None:
        """Reach first, then scope: a job the caller cannot see must not leak a 403."""
        self.require_access(job_id)
        self.require(scope)

    def to_context(self) -> dict[str, str]:
        """Flat strings, as an API Gateway authorizer may hand them on to the routes."""
        return {
            "tenantId": self.tenant_id,
            "subject": self.subject,
            "scopes": " ".join(sorted(scope.value for scope in self.scopes)),
            "jobId": self.job_id or "",
        }

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Principal:
        """The principal an authorizer verified, read back from `requestContext.authorizer`."""
        return cls(
            tenant_id=str(context["tenantId"]),
            subject=str(context["subject"]),
            scopes=frozenset(Scope(name) for name in str(context.get("scopes", "")).split()),
            job_id=str(context.get("jobId") or "") or None,
        )
