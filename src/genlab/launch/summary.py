"""How a sweep went, said at its end: each job finished, failed (with its reason) or skipped (finished in an
earlier run of the same sweep), and a non-zero exit when any job of the grid failed."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from genlab.errors import GenlabError

#: the longest reason printed for a job (its failed.json has all of it, with the traceback)
REASON_CHARS = 300


@dataclass
class JobOutcome:
    """One job of a sweep: its number, its run folder, how it ended, and why it failed (a skipped job that
    failed in an earlier run keeps that reason)."""

    num: int
    folder: Path
    state: Literal["finished", "failed", "skipped"]
    reason: str | None = None

    @property
    def failed(self) -> bool:
        return self.reason is not None


def short(reason: str) -> str:
    text = " ".join(reason.split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


def summary(outcomes: Sequence[JobOutcome], sweep_dir: str | Path) -> str:
    """A few lines: the counts, then one line per job (its folder's name, and the reason of a failure)."""
    counts = {state: sum(o.state == state for o in outcomes) for state in ("finished", "failed", "skipped")}
    header = f"sweep {sweep_dir}: {len(outcomes)} job{'' if len(outcomes) == 1 else 's'}, " + ", ".join(
        f"{count} {state}" for state, count in counts.items()
    )
    failed_before = sum(o.state == "skipped" and o.failed for o in outcomes)
    lines = [header + (f" ({failed_before} of them had failed)" if failed_before else "")]
    for outcome in sorted(outcomes, key=lambda o: o.num):
        line = f"  {outcome.state:<8}  {outcome.folder.name}"
        if outcome.state == "skipped":
            line += ": failed in an earlier run: " if outcome.failed else ": finished in an earlier run"
            line += short(outcome.reason) if outcome.reason else ""
        elif outcome.reason:
            line += f": {short(outcome.reason)}"
        lines.append(line)
    return "\n".join(lines)


def failures_error(outcomes: Sequence[JobOutcome]) -> GenlabError | None:
    """The error a sweep exits with when any of its jobs failed, in this run or an earlier one."""
    failed = [o for o in sorted(outcomes, key=lambda o: o.num) if o.failed]
    if not failed:
        return None
    earlier = sum(o.state == "skipped" for o in failed)
    message = f"{len(failed)} of {len(outcomes)} jobs failed: {', '.join(o.folder.name for o in failed)}"
    message += " (each folder's failed.json has the traceback"
    if earlier:
        message += f"; {earlier} failed in an earlier run: delete its failed.json to run it again"
    return GenlabError(message + ")")


def end_sweep(outcomes: Sequence[JobOutcome], sweep_dir: str | Path) -> None:
    """Print the summary; exit 1 (after every job ran) when a job failed, as `error: N of M jobs failed`."""
    print(summary(outcomes, sweep_dir), flush=True)
    error = failures_error(outcomes)
    if error is not None:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(error.exit_code)
