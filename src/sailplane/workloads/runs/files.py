"""Where a run's files live on the node that executes it (the local compute backend).

- `<data_dir>/runs/<runId>/driver.log`: the driver's output, appended by every attempt.
- `<data_dir>/runs/<runId>/work/`: private working directory (git checkout, generated files);
  removed when the run's resources are cleaned up.
- `<data_dir>/jobs/<jobKey>/runs/<runId>/`: the results (`results.outputPath`; Parquet for SQL
  jobs, whatever a Python job writes to `SAILPLANE_OUTPUT_PATH`). Kept when the run is deleted:
  they are the user's data, not ours.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def run_dir(data_dir: Path, run_id: str) -> Path:
    return data_dir / "runs" / run_id


def log_path(data_dir: Path, run_id: str) -> Path:
    return run_dir(data_dir, run_id) / "driver.log"


def work_dir(data_dir: Path, run_id: str) -> Path:
    return run_dir(data_dir, run_id) / "work"


def output_dir(data_dir: Path, job_key: str, run_id: str) -> Path:
    return data_dir / "jobs" / job_key / "runs" / run_id


def remove_run_files(data_dir: Path, run_id: str) -> None:
    """The log and the work directory of a deleted run (not its results)."""
    shutil.rmtree(run_dir(data_dir, run_id), ignore_errors=True)
