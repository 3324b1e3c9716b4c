"""Typed shortcuts for the common operations, written once for both clients: each is `self.call(operationId, …)`,
so it answers what `call` answers (the JSON for the sync client, an awaitable of it for the async one)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

R = TypeVar("R")


def _fields(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class Operations(Generic[R]):
    def call(self, operation_id: str, path_params: dict[str, str] | None = None, body: Any = None,
             query: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> R:
        raise NotImplementedError

    # --- sign-in (a token in the answer becomes the client's) ---------------------------------------------
    def login(self, email: str, password: str, *, device_name: str | None = None,
              trusted_device_token: str | None = None) -> R:
        """A token, or an MFA challenge (`mfaRequired`, `challengeToken`) for complete_mfa_login."""
        return self.call("login", body=_fields(email=email, password=password, deviceName=device_name,
                                               trustedDeviceToken=trusted_device_token))

    def complete_mfa_login(self, challenge_token: str, *, code: str | None = None,
                           recovery_code: str | None = None) -> R:
        return self.call("completeMfaLogin", body=_fields(challengeToken=challenge_token, code=code,
                                                          recoveryCode=recovery_code))

    def request_login_code(self, email: str) -> R:
        return self.call("requestLoginCode", body={"email": email})

    def verify_login_code(self, email: str, code: str) -> R:
        return self.call("verifyLoginCode", body={"email": email, "code": code})

    def logout(self) -> R:
        return self.call("logout")

    def me(self) -> R:
        return self.call("getMe")

    # --- teams ----------------------------------------------------------------------------------------
    def list_teams(self, *, page: int = 1, limit: int = 100) -> R:
        return self.call("listTeams", query={"page": page, "limit": limit})

    def describe_team(self, team: str) -> R:
        return self.call("describeTeam", {"team": team})

    # --- sessions -------------------------------------------------------------------------------------
    def list_sessions(self, *, team_id: str | None = None, status: str | None = None, limit: int = 100,
                      marker: str | None = None) -> R:
        return self.call("listSessions", query={"teamId": team_id, "status": status, "limit": limit,
                                                "marker": marker})

    def create_session(self, team_id: str, *, name: str | None = None, workload_config_id: str | None = None,
                       **fields: Any) -> R:
        return self.call("createSession", body=_fields(teamId=team_id, name=name,
                                                       workloadConfigId=workload_config_id, **fields))

    def describe_session(self, session: str) -> R:
        return self.call("describeSession", {"session": session})

    def close_session(self, session: str) -> R:
        return self.call("closeSession", {"session": session})

    def issue_session_token(self, session: str) -> R:
        return self.call("issueSessionToken", {"session": session})

    # --- jobs and runs --------------------------------------------------------------------------------
    def list_jobs(self, *, limit: int = 100) -> R:
        return self.call("listJobs", query={"limit": limit})

    def create_job(self, body: dict[str, Any]) -> R:
        return self.call("createJob", body=body)

    def describe_job(self, job: str) -> R:
        return self.call("describeJob", {"job": job})

    def list_job_runs(self, job: str, *, limit: int = 100, marker: str | None = None) -> R:
        return self.call("listJobRuns", {"job": job}, query={"limit": limit, "marker": marker})

    def create_job_run(self, job: str, *, idempotency_key: str | None = None, hold: bool | None = None,
                       **fields: Any) -> R:
        """Starts a run; retries reuse one Idempotency-Key (a fresh one unless given), so a retried request
        never starts a second run."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.call("createJobRun", {"job": job}, body=_fields(hold=hold, **fields), headers=headers)

    def describe_job_run(self, job: str, run: str) -> R:
        return self.call("describeJobRun", {"job": job, "jobRun": run})

    def cancel_job_run(self, job: str, run: str) -> R:
        return self.call("cancelJobRun", {"job": job, "jobRun": run})

    def job_run_logs(self, job: str, run: str, *, offset: int = 0) -> R:
        """A LogChunk: the output from `offset`, the next offset and the run's status."""
        return self.call("getJobRunLogs", {"job": job, "jobRun": run}, query={"offset": offset})
