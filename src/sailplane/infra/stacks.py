"""What operations share about CloudFormation stacks: when a stack has settled, how a step waits for it, and how an
AWS failure becomes a step's outcome (waiting out AWS being unavailable, failing on anything else).

Used by the connection template sync (`connections.sync`) and the network operations (`networks.operations`).
"""

from __future__ import annotations

from typing import Any

from sailplane.infra.operations.steps import Outcome, again, fail
from sailplane.infra.providers.aws import CloudError

POLL_SECONDS = 3.0
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
    """`again` while the stack is busy; None once it has settled (whichever way: the caller judges)."""
    return again(delay, f"The stack is {status(stack)}.") if busy(stack) else None


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
