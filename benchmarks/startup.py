"""Start-up time of the command line: how long a user waits for `--help` or an argument error.

Each command runs as a fresh process (the import cost is the point), `repeats` times; the table gives the
median wall time. The root scripts import torch and Lightning only inside their Hydra task (genlab.cli).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: a key without dots (the results tables read dotted paths) -> the command's arguments
COMMANDS = {
    "train_help": ["train.py", "--help"],
    "train_unknown_key": ["train.py", "model.lr=1e-3"],
    "evaluate_help": ["evaluate.py", "--help"],
    "generate_help": ["generate.py", "--help"],
    "compare_help": ["compare.py", "--help"],
}


def wall_s(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, check=False)
    return time.perf_counter() - started


def measure(*, mnist_dir: str, imagenette_dir: str, device: str, quick: bool = False) -> dict[str, Any]:
    repeats = 1 if quick else 5
    return {
        name: {
            "command": "python " + " ".join(args),
            "median_s": round(statistics.median(wall_s(args) for _ in range(repeats)), 3),
            "runs": repeats,
        }
        for name, args in COMMANDS.items()
    }


def table(results: dict[str, Any]) -> str:
    rows = [f"| `{row['command']}` | {row['median_s']:.2f} |" for row in results.values()]
    return "\n".join(
        ["### Start-up (median of fresh processes)", "| command | seconds |", "|---|---|", *rows]
    )
