"""What operations share about CloudFormation stacks: when a stack has settled, how a step waits for it, and how an
AWS failure becomes a step's outcome (waiting out AWS being unavailable, failing on anything else).

Used by the connection template sync (`connections.sync`) and the stack-backed resources' operations (`stacked`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from sailplane.infra.connections.service import Target, assumed_role
from sailplane.infra.operations.steps import Outcome, StepContext, again, fail
from sailplane.infra.providers.aws import AssumedRole, Aws, CloudError
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import Database

POLL_SECONDS = 3.0  # the longest a busy stack goes undescribed (a kind may say longer: clusters)
FIRST_POLL_SECONDS = 0.5  # the shortest (`poll_delay`)
SETTLED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
           "IMPORT_ROLLBACK_COMPLETE")
_UNAVAILABLE = ("Throttling", "ThrottlingException", "RequestLimitExceeded", "EndpointConnectionError",
                "ConnectTimeoutError", "ReadTimeoutError")


def status(stack: dict[str, Any]) -> str:
    return str(stack.get("StackStatus") or "")


def busy(stack: dict[str, Any]) -> bool:
    """CloudFormation is still working on the stack (create, update, delete or rollback in progress)."""
    return status(stack).endswith("_IN_PROGRESS")


def wait(stack: dict[str, Any], delay: float = POLL_SECONDS) -> Outcome | None:
    """`again` while the stack is busy (looked at again within `delay`: `poll_delay`); None once it has settled
    (whichever way: the caller judges)."""
    return again(poll_delay(stack, delay), f"The stack is {status(stack)}.") if busy(stack) else None


def poll_delay(stack: dict[str, Any], longest: float = POLL_SECONDS, now: datetime | None = None) -> float:
    """How long until a busy stack is described again: a quarter of the time since CloudFormation last started on
    it, between FIRST_POLL_SECONDS and `longest`. Like boto3's waiters, but quick at first: a stack that settles in
    a second (a small change; moto at once) is seen settled within a second, not a whole `longest` later, and one
    that has been busy for minutes is described every `longest` (a clock off from AWS's only moves it between the
    two)."""
    started = [t for t in (stack.get("CreationTime"), stack.get("LastUpdatedTime"), stack.get("DeletionTime"))
               if isinstance(t, datetime)]
    if not started:
        return longest
    elapsed = ((now or datetime.now(UTC)) - max(started)).total_seconds()
    return max(min(FIRST_POLL_SECONDS, longest), min(longest, elapsed / 4))


def failed(stack: dict[str, Any], code: str, doing: str) -> Outcome:
    """A settled stack that is not what the step waited for: the operation fails with CloudFormation's reason."""
    reason = stack.get("StackStatusReason") or "no reason given"
    return fail(code, f"CloudFormation did not {doing} ({status(stack)}): {reason}", caused_by=status(stack),
                retryable=True)


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {str(o["OutputKey"]): str(o.get("OutputValue", "")) for o in stack.get("Outputs") or []}


def cloud_failure(exc: CloudError) -> Outcome:
    if exc.code in _UNAVAILABLE:
        return again(POLL_SECONDS * 5, f"AWS is unavailable ({exc.code}); trying again.")
    return fail("cloud_provider_error", str(exc), caused_by=exc.code, retryable=not exc.denied)


def step_role(aws: Aws, connection: Target) -> AssumedRole | Outcome:
    """The connection's role for an operation's step, or the step's outcome when it cannot be assumed (waiting out
    AWS being unavailable, failing on anything else). Credentials are never stored: a step reuses the ones this
    process got within the last minute (`providers.aws.REUSE_SECONDS`), or assumes the role again."""
    try:
        return assumed_role(aws, connection, reuse=True)
    except CloudError as exc:
        return cloud_failure(exc)


class Regional(Protocol):
    @property
    def region(self) -> str: ...


L = TypeVar("L", bound=Regional)


class StackLookup(Generic[L]):
    """How an operation's steps find their stack: read what they work on (`subject`, in one short transaction),
    assume the connection's role, describe the stack. Each step does it again (a killed runner runs it twice)."""

    def __init__(self, db: Database, aws: Aws, encryptor: Encryptor) -> None:
        self.db = db
        self.aws = aws
        self.encryptor = encryptor

    def subject(self, ctx: StepContext) -> L | Outcome:
        raise NotImplementedError

    def connection_of(self, subject: L) -> Target:
        raise NotImplementedError

    def stack_of(self, subject: L, ctx: StepContext) -> str:
        """The stack's ARN when known, else its name."""
        raise NotImplementedError

    def _role(self, ctx: StepContext) -> tuple[L, AssumedRole] | Outcome:
        subject = self.subject(ctx)
        if isinstance(subject, Outcome):
            return subject
        role = step_role(self.aws, self.connection_of(subject))
        return role if isinstance(role, Outcome) else (subject, role)

    def _stack(self, ctx: StepContext) -> tuple[L, AssumedRole, dict[str, Any] | None] | Outcome:
        found = self._role(ctx)
        if isinstance(found, Outcome):
            return found
        subject, role = found
        try:
            return subject, role, self.aws.describe_stack(role, subject.region, self.stack_of(subject, ctx))
        except CloudError as exc:
            return cloud_failure(exc)
