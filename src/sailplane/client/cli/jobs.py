"""`sailplane jobs create|list|run|runs|logs|cancel`. A job is named by its ID or its jobKey."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sailplane.client.cli.common import OutputOption, ProfileOption, api, by_id, emit, fail
from sailplane.client.cli.profiles import DEFAULT_PROFILE

if TYPE_CHECKING:
    from sailplane.client import Client

jobs = typer.Typer(help="Jobs and their runs.", no_args_is_help=True)
JobArg = Annotated[str, typer.Argument(help="The job's ID or jobKey.")]
RunArg = Annotated[str, typer.Argument(help="The run ID.")]
# How a waited-for or followed run ends the command (succeeded = 0), as `timeout(1)` does for a timeout.
EXIT_CODES = {"succeeded": 0, "failed": 1, "timeout": 124, "cancelled": 130}
RUN_COLUMNS = [("ID", lambda r: r["id"]), ("STATUS", lambda r: r["status"]), ("TRIGGER", lambda r: r.get("trigger")),
               ("CREATED", lambda r: r.get("createdAt")), ("FINISHED", lambda r: r.get("finishedAt")),
               ("MESSAGE", lambda r: r.get("statusMessage"))]
_ID = re.compile(r"^[A-Z0-9]{1,20}$")


def resolve(client: Client, job: str) -> str:
    if _ID.match(job):
        return job
    for page in client.pages("listJobs"):
        for record in page.get("included", {}).get("jobs") or []:
            if record.get("jobKey") == job:
                return str(record["id"])
    fail(f"no job with the key {job!r} (see `sailplane jobs list`)")


@jobs.command("create")
def create(file: Annotated[Path, typer.Argument(help="The job as JSON (createJob's body), '-' for stdin.")],
           profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """Create a job from its JSON definition."""
    text = sys.stdin.read() if str(file) == "-" else file.read_text()
    try:
        body = json.loads(text)
    except ValueError as exc:
        fail(f"{file} is not JSON: {exc}", 2)
    with api(profile) as client:
        job = client.create_job(body)
    emit(output, job, [("ID", lambda j: j["id"]), ("KEY", lambda j: j["jobKey"]), ("STATUS", lambda j: j["status"])],
         rows=[job])


@jobs.command("list")
def list_jobs(profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """The jobs you can see, with their latest run."""
    rows: list[dict[str, Any]] = []
    with api(profile) as client:
        for page in client.pages("listJobs"):
            records, runs = by_id(page["included"].get("jobs")), by_id(page["included"].get("jobRuns"))
            for item in page.get("items") or []:
                latest = runs.get(item.get("latestJobRunId") or "")
                rows.append({**records.get(item["jobId"], {"id": item["jobId"]}), "teamIds": item.get("teamIds"),
                             "latestJobRun": latest})
    emit(output, rows, [("ID", lambda j: j["id"]), ("KEY", lambda j: j.get("jobKey")),
                        ("STATUS", lambda j: j.get("status")), ("SCHEDULE", lambda j: j.get("cronExpression")),
                        ("LAST RUN", lambda j: (j["latestJobRun"] or {}).get("status"))])


@jobs.command("run")
def run(job: JobArg,
        wait: Annotated[bool, typer.Option("--wait", help="Wait for the run to end and exit with its outcome: 0 "
                                                         "succeeded, 1 failed, 124 timeout, 130 cancelled.")] = False,
        hold: Annotated[bool, typer.Option("--hold", help="Create it pending (release it later).")] = False,
        profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """Start a run of a job now."""
    with api(profile) as client:
        job_id = resolve(client, job)
        record = client.create_job_run(job_id, hold=True if hold else None)
        if wait and not hold:
            record = _wait(client, job_id, record, quiet=output == "json")
    emit(output, record, RUN_COLUMNS, rows=[record])
    if wait and not hold:
        raise typer.Exit(EXIT_CODES.get(record["status"], 1))


def _wait(client: Client, job_id: str, record: dict[str, Any], *, quiet: bool) -> dict[str, Any]:
    """Poll the run until it ends, with a live status line on a terminal."""
    from rich.console import Console

    console = Console(stderr=True)
    show = console.is_terminal and not quiet
    status = console.status(f"run {record['id']}: {record['status']}") if show else None
    if status:
        status.start()
    try:
        while record["status"] not in EXIT_CODES:
            time.sleep(0.5)
            record = client.describe_job_run(job_id, record["id"])
            if status:
                status.update(f"run {record['id']}: {record['status']}")
    finally:
        if status:
            status.stop()
    return record


@jobs.command("runs")
def runs(job: JobArg, limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
         profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """A job's runs."""
    rows: list[dict[str, Any]] = []
    with api(profile) as client:
        job_id = resolve(client, job)
        for page in client.pages("listJobRuns", {"job": job_id}, query={"limit": min(limit, 100)}):
            records = by_id(page["included"].get("jobRuns"))
            rows.extend(records[i["jobRunId"]] for i in page.get("items") or [] if i["jobRunId"] in records)
            if len(rows) >= limit:
                break
    emit(output, rows[:limit], RUN_COLUMNS)


@jobs.command("logs")
def logs(job: JobArg, run_id: RunArg,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends, then exit "
                                                                     "with its outcome (as `run --wait`).")] = False,
         profile: ProfileOption = DEFAULT_PROFILE) -> None:
    """A run's driver output."""
    with api(profile) as client:
        job_id = resolve(client, job)
        for chunk in client.follow_logs(job_id, run_id) if follow else client.read_logs(job_id, run_id):
            sys.stdout.write(chunk.text)
            sys.stdout.flush()
        if not follow:
            return
        final = client.describe_job_run(job_id, run_id)["status"]
    raise typer.Exit(EXIT_CODES.get(final, 1))


@jobs.command("cancel")
def cancel(job: JobArg, run_id: RunArg, profile: ProfileOption = DEFAULT_PROFILE,
           output: OutputOption = "table") -> None:
    """Cancel a run (its processes are stopped)."""
    with api(profile) as client:
        record = client.cancel_job_run(resolve(client, job), run_id)
    emit(output, record, RUN_COLUMNS, rows=[record])
