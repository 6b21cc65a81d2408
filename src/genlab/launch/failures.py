"""Failure isolation for sweeps: a diverged or failed job is recorded in its run dir and the sweep goes on."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

from genlab.errors import DivergedError
from genlab.run_dir import failure_file


def record_failure(output_dir: str | Path, error: BaseException) -> Path:
    """Write `failed.json` (reason, error type, traceback) into the run dir and return its path; the report
    marks the run failed with its reason."""
    path = failure_file(output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "reason": str(error) or type(error).__name__,
        "error": type(error).__name__,
        "diverged": isinstance(error, DivergedError),
        "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
    }
    path.write_text(json.dumps(record, indent=2))
    return path


def read_failure(run_dir: str | Path) -> dict[str, Any] | None:
    """The failure record of a run dir, or None when the job did not record one."""
    path = failure_file(run_dir)
    return json.loads(path.read_text()) if path.is_file() else None
