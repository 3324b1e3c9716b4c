"""The shapes of the common answers, for annotating what the client returns (`run: JobRun = client.create_job_run(
job)`). tests/client/test_spec.py checks each against the operation snapshot field by field, so a field added,
renamed or removed by the API fails a test until this file follows."""

from __future__ import annotations

from typing import Any, TypedDict


class LoginAnswer(TypedDict, total=False):
    """A token, or an MFA challenge (`mfaRequired`, `challengeToken`, `methods`)."""

    token: str
    tokenType: str
    loginId: str
    userId: str
    expiresAt: str
    mustChangePassword: bool
    mfaEnrollmentRequired: bool
    mfaRequired: bool
    challengeToken: str
    methods: list[str]
    enrollmentRequired: bool


class MfaLoginAnswer(TypedDict, total=False):
    """completeMfaLogin's token; `trustedDeviceToken` (with trustDevice) skips the challenge next time."""

    token: str
    tokenType: str
    loginId: str
    userId: str
    expiresAt: str
    mustChangePassword: bool
    mfaEnrollmentRequired: bool
    trustedDeviceId: str | None
    trustedDeviceToken: str | None


class Organization(TypedDict):
    id: str
    name: str
    memberId: str
    roleIds: list[str]


class Me(TypedDict):
    user: dict[str, Any]
    preferences: dict[str, Any]
    organizationId: str | None
    memberId: str | None
    roleIds: list[str]
    defaultOrganizationId: str | None
    organizations: list[Organization]
    loginOrganizationId: str | None


class TeamItem(TypedDict):
    team: dict[str, Any]
    memberCount: int


class Session(TypedDict):
    id: str
    name: str
    status: str
    statusMessage: str | None
    teamId: str
    memberId: str | None
    serviceAccountId: str | None
    notebookId: str | None
    endpointType: str
    workloadId: str
    config: dict[str, Any]
    metadata: dict[str, str]
    connectionInfo: dict[str, Any] | None
    createdAt: str
    updatedAt: str
    lastActivityAt: str | None
    idleSince: str | None
    timeoutAt: str | None
    closedAt: str | None
    terminationReason: str | None


class SessionToken(TypedDict):
    token: str
    expiresAt: str


class Job(TypedDict):
    id: str
    memberId: str
    jobKey: str
    version: int
    currentVersion: int
    draftVersion: int | None
    basedOnVersion: int | None
    status: str
    clusterId: str
    description: str | None
    config: dict[str, Any]
    timeoutSeconds: int | None
    sourceConfig: dict[str, Any] | None
    dependsOn: list[dict[str, Any]]
    cronExpression: str | None
    cronTimezone: str | None
    concurrencyPolicy: str
    maxConcurrentRuns: int
    missedSchedulePolicy: str
    nextRunAt: str | None
    lastScheduledAt: str | None
    createdAt: str
    createdBy: str
    updatedAt: str
    updatedBy: str


class JobRun(TypedDict):
    id: str
    jobId: str
    jobVersion: int
    status: str
    statusMessage: str | None
    resourceCleanupMode: str
    trigger: str
    results: dict[str, Any] | None
    dispatchedAt: str | None
    finishedAt: str | None
    runnerStartedAt: str | None
    runnerCompletedAt: str | None
    runnerExecutionTimeUs: int | None
    cleanedAt: str | None
    createdAt: str
    createdBy: str
    updatedAt: str
    updatedBy: str


# operationId -> the shape of its JSON answer (checked by tests/client/test_spec.py).
RESPONSES: dict[str, type] = {
    "login": LoginAnswer, "completeMfaLogin": MfaLoginAnswer, "verifyLoginCode": LoginAnswer, "getMe": Me,
    "describeTeam": TeamItem, "createSession": Session, "describeSession": Session,
    "issueSessionToken": SessionToken, "createJob": Job, "createJobRun": JobRun, "describeJobRun": JobRun,
    "cancelJobRun": JobRun,
}
