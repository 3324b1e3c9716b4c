"""What an operation kind is: named steps run in order, each idempotent, each ending in an `Outcome`.

A step may run more than once (its server was killed before its end was recorded), so it must be safe to
repeat: it looks before it acts (the stack's status, the version it is at), or acts so that a repeat is refused and
then looks (CreateStack of the resource's own stack name: AlreadyExistsException), and passes AWS a client request
token derived from the operation, never creating blindly. What later steps need goes into `Outcome.state`, saved with
the step's end in the same UPDATE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NEXT, AGAIN, DONE, FAIL = "next", "again", "done", "fail"


@dataclass(frozen=True)
class StepContext:
    operation_id: str
    organization_id: str
    resource_type: str
    resource_id: str
    state: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """`next`: the step is done; `again`: run this step again after `delay` seconds (waiting on AWS); `done`:
    the operation succeeded with `result` (later steps are skipped, reported `unchanged`); `fail`: it failed
    with `error` (code, message, causedBy, retryable)."""

    kind: str
    message: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def next_step(message: str = "", **state: Any) -> Outcome:
    return Outcome(NEXT, message, state)


def again(delay: float, message: str, **state: Any) -> Outcome:
    return Outcome(AGAIN, message, state, delay=delay)


def done(result: dict[str, Any], message: str = "", **state: Any) -> Outcome:
    return Outcome(DONE, message, state, result=result)


def fail(code: str, message: str, *, caused_by: str | None = None, retryable: bool = False) -> Outcome:
    return Outcome(FAIL, message, error={"code": code, "message": message, "causedBy": caused_by,
                                         "retryable": retryable})


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    run: Callable[[StepContext], Outcome]


@dataclass(frozen=True)
class OperationKind:
    """An operation's steps; `finished(ctx, outcome)` records its end on the resource (a connection's
    templateSyncMessage) just before the operation's own row does, so it too must be idempotent (a server
    killed in between runs the last step and `finished` again)."""

    name: str
    steps: tuple[Step, ...]
    finished: Callable[[StepContext, Outcome], None] | None = None


# --- progress, as getOperation shows it --------------------------------------------------------------------------

PENDING_STEP, RUNNING_STEP, SUCCEEDED_STEP, FAILED_STEP, UNCHANGED_STEP = (
    "pending", "running", "succeeded", "failed", "unchanged")


def initial_progress(operation_id: str, steps: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Every step pending; `stage` is the first. `steps`: (name, description) pairs."""
    resources = [{"urn": f"sailplane:operation:{operation_id}:step:{name}", "type": "sailplane:step", "name": name,
                  "operation": description, "status": PENDING_STEP, "duration": 0} for name, description in steps]
    return with_summary({"stage": steps[0][0] if steps else "", "message": "Waiting for a runner.",
                         "resources": resources})


def with_summary(progress: dict[str, Any]) -> dict[str, Any]:
    counts = {key: 0 for key in (PENDING_STEP, RUNNING_STEP, SUCCEEDED_STEP, FAILED_STEP, UNCHANGED_STEP)}
    for resource in progress["resources"]:
        counts[resource["status"]] = counts.get(resource["status"], 0) + 1
    return {**progress, "summary": {"total": len(progress["resources"]), **counts}}


def step_progress(progress: dict[str, Any], index: int, status: str, message: str, duration: float | None = None,
                  rest: str | None = None) -> dict[str, Any]:
    """`progress` with step `index` at `status` (its duration added to), and the steps after it at `rest` when
    given (the operation ended early: `unchanged`)."""
    resources = [dict(r) for r in progress["resources"]]
    current = resources[index]
    current["status"] = status
    if duration is not None:
        current["duration"] = round(float(current.get("duration") or 0) + duration, 3)
    if rest is not None:
        for later in resources[index + 1:]:
            later["status"] = rest
    return with_summary({"stage": current["name"], "message": message, "resources": resources})
