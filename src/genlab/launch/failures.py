"""Failure isolation for sweeps: a diverged or failed job is recorded in its run dir and the sweep goes on."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

from genlab.errors import DivergedError

#: written into a run dir when its job fails; genlab.report marks the run failed with its reason
FAILURE_FILE = "failed.json"


def record_failure(output_dir: str | Path, error: BaseException) -> Path:
    """Write `failed.json` (reason, error type, traceback) into the run dir and return its path."""
    path = Path(output_dir) / FAILURE_FILE
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
    path = Path(run_dir) / FAILURE_FILE
    return json.loads(path.read_text()) if path.is_file() else None
