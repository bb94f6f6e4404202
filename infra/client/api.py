"""The HTTP API (docs/http-api.md) from the client's side, over aiohttp.

Errors come back as `ApiProblem` carrying the problem+json `title`, `detail` and `code`, so the
CLI can print them and a watch can tell "retry" (5xx, network) from "stop" (other 4xx) from
"the job is gone" (404). State sync (`sync_state`) is the one call retried here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import aiohttp

from infra.client.policy import Backoff
from shared.api.problems import PROBLEM_CONTENT_TYPE
from shared.api.schemas import JobCreated, JobList
from shared.domain.models import JobRequest, JobState, JobStatus

Sleep = Callable[[float], Awaitable[None]]
ControlAction = Literal["cancel", "pause", "resume"]


class ApiProblem(Exception):
    """A non-2xx answer (or no answer: status 0) with what the server said about it."""

    def __init__(self, status: int, title: str, detail: str, code: str | None = None) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code

    @property
    def retryable(self) -> bool:
        """Network failures and 5xx may pass; any other 4xx will answer the same again."""
        return self.status == 0 or self.status >= 500


class JobGoneError(ApiProblem):
    """404 on a job: deleted, expired, or not this caller's (another tenant's is 404 too)."""


class TetherApi:
    """One base URL and one bearer token; `token=` on a call overrides it (resume tokens)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str | None,
        *,
        sleep: Sleep,
        state_sync: Backoff | None = None,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._token = token
        self._sleep = sleep
        self._state_sync = state_sync or Backoff(initial=0.5, cap=4.0, attempts=3)

    async def create_job(
        self, request: JobRequest, *, idempotency_key: str | None = None
    ) -> JobCreated:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = request.model_dump(mode="json", exclude_none=True)
        return JobCreated.model_validate(
            await self._call("POST", "/jobs", json=body, headers=headers)
        )

    async def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        job_type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobList:
        query = {"status": status, "type": job_type, "limit": limit, "cursor": cursor}
        params = {key: str(value) for key, value in query.items() if value is not None}
        return JobList.model_validate(await self._call("GET", "/jobs", params=params))

    async def get_job(self, job_id: str, *, token: str | None = None) -> JobState:
        return JobState.model_validate(await self._call("GET", f"/jobs/{job_id}", token=token))

    async def control(self, job_id: str, action: ControlAction) -> JobState:
        return JobState.model_validate(await self._call("POST", f"/jobs/{job_id}/{action}"))

    async def delete_job(self, job_id: str) -> None:
        """DELETE /jobs/{id}: a finished job and its messages (409 while it runs)."""
        await self._call("DELETE", f"/jobs/{job_id}")

    async def sync_state(self, job_id: str, *, token: str | None = None) -> JobState:
        """GET /jobs/{id}, tried `state_sync.attempts` times: 5xx and network errors retry."""
        waits = list(self._state_sync.delays())[:-1]  # n tries have n - 1 waits between them
        for wait in waits:
            try:
                return await self.get_job(job_id, token=token)
            except ApiProblem as problem:
                if not problem.retryable:
                    raise
            await self._sleep(wait)
        return await self.get_job(job_id, token=token)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        bearer = token or self._token
        sent = dict(headers or {})
        if bearer:
            sent["Authorization"] = f"Bearer {bearer}"
        try:
            async with self._session.request(
                method, self._base + path, json=json, params=params, headers=sent
            ) as response:
                if response.status >= 400:
                    raise await _problem(response)
                if response.status == 204:
                    return None
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as unreachable:
            detail = f"{method} {self._base}{path}: {unreachable or type(unreachable).__name__}"
            raise ApiProblem(0, "Unreachable", detail) from unreachable


async def _problem(response: aiohttp.ClientResponse) -> ApiProblem:
    title, detail, code = response.reason or "HTTP error", "", None
    if response.content_type in (PROBLEM_CONTENT_TYPE, "application/json"):
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
        if isinstance(body, dict):
            title = str(body.get("title") or title)
            detail = str(body.get("detail") or "")
            code = body.get("code")
    else:
        detail = (await response.text())[:200]
    kind = JobGoneError if response.status == 404 else ApiProblem
    return kind(response.status, title, detail, code)
