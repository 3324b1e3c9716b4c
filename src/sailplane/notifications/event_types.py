"""The catalog of notification event types: what a rule may subscribe to.

A shortcut (`expandsTo` not empty) stands for several concrete types and is expanded when a rule is created, so
a rule stores concrete keys only and matching an event is a plain membership test. Each key is emitted by the
owner of its state (ARCHITECTURE.md, notifications row): runs', sessions', notebooks' and operations' state
transitions, and the services that make the security changes (`notifications.security`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class EventType:
    key: str
    resource_type: str
    label: str
    description: str
    expands_to: tuple[str, ...] = ()


JOB_RUN: Final = "job_run"
SESSION: Final = "session"
NOTEBOOK: Final = "notebook"
OPERATION: Final = "operation"
ORGANIZATION: Final = "organization"
TEST: Final = "notification.test"  # sendTestNotification's message (not subscribable)

RUN_SUCCEEDED, RUN_FAILED, RUN_TIMEOUT, RUN_CANCELLED = ("job_run.succeeded", "job_run.failed", "job_run.timeout",
                                                         "job_run.cancelled")

CATALOG: Final[tuple[EventType, ...]] = (
    EventType(RUN_SUCCEEDED, JOB_RUN, "Job run succeeded", "A job run finished successfully."),
    EventType(RUN_FAILED, JOB_RUN, "Job run failed", "A job run failed."),
    EventType(RUN_TIMEOUT, JOB_RUN, "Job run timed out", "A job run exceeded its timeout."),
    EventType(RUN_CANCELLED, JOB_RUN, "Job run cancelled", "A job run was cancelled."),
    EventType("job_run.any_terminal", JOB_RUN, "Job run ended (any terminal status)",
              "Shortcut: succeeded, failed, timed out or cancelled.",
              (RUN_SUCCEEDED, RUN_FAILED, RUN_TIMEOUT, RUN_CANCELLED)),
    EventType("job_run.failed_or_timeout", JOB_RUN, "Job run failed or timed out",
              "Shortcut: failed or timed out.", (RUN_FAILED, RUN_TIMEOUT)),
    EventType("session.failed", SESSION, "Session failed", "An interactive session failed."),
    EventType("session.timed_out", SESSION, "Session closed by timeout",
              "An interactive session was closed by its idle or maximum-duration timeout."),
    EventType("notebook.start_failed", NOTEBOOK, "Notebook failed to start", "A notebook's server failed to start."),
    EventType("notebook.failed", NOTEBOOK, "Notebook failed",
              "A notebook that had started failed: its server or its session ended unexpectedly."),
    EventType("notebook.stopped", NOTEBOOK, "Notebook stopped", "A notebook's server stopped."),
    EventType("operation.succeeded", OPERATION, "Operation succeeded", "An infrastructure operation succeeded."),
    EventType("operation.failed", OPERATION, "Operation failed", "An infrastructure operation failed."),
    EventType("security.identity_provider_created", ORGANIZATION, "Identity provider created",
              "A single sign-on identity provider was added to the organization."),
    EventType("security.identity_provider_updated", ORGANIZATION, "Identity provider updated",
              "A single sign-on identity provider's settings, email domains or client secret changed."),
    EventType("security.identity_provider_deleted", ORGANIZATION, "Identity provider deleted",
              "A single sign-on identity provider was removed from the organization."),
    EventType("security.role_changed", ORGANIZATION, "Role changed",
              "A member's organization or team roles changed (joining or leaving a team included)."),
    EventType("security.api_key_created", ORGANIZATION, "API key created", "A service account API key was created."),
    EventType("security.api_key_revoked", ORGANIZATION, "API key revoked",
              "A service account API key was revoked, or deleted with its service account."),
    EventType("security.invitation_created", ORGANIZATION, "Invitation sent",
              "Someone was invited to join the organization."),
    EventType("security.invitation_accepted", ORGANIZATION, "Invitation accepted",
              "An invitation was accepted: its invitee joined the organization."),
    EventType("security.user_created", ORGANIZATION, "User created",
              "An administrator created a user account in the organization."),
    EventType("security.member_removed", ORGANIZATION, "Member removed",
              "A member was removed from the organization (or their user deleted)."),
)
BY_KEY: Final = {t.key: t for t in CATALOG}


def expand(keys: list[str]) -> list[str]:
    """Concrete keys for the given keys (shortcuts replaced by what they stand for), in catalog order, once each.
    Unknown keys raise KeyError (the caller names the field)."""
    wanted: set[str] = set()
    for key in keys:
        t = BY_KEY[key]
        wanted.update(t.expands_to or (t.key,))
    return [t.key for t in CATALOG if t.key in wanted]
