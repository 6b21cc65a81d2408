"""The command line before any config exists: what the root scripts run first, with light imports only.

Every command (`python train.py --help` too) pays for what its script imports before Hydra composes the
config, so the scripts import torch, Lightning and the rest of genlab inside their Hydra task, here never.
"""

from __future__ import annotations

from collections.abc import Sequence


def multirun_as_override(argv: list[str]) -> list[str]:
    """Let `-m ... --cfg hydra` show a sweep's config: Hydra 1.3 refuses `-m` beside `--cfg`, but takes the
    same mode as the override `hydra.mode=MULTIRUN`, so `-m` becomes that when `--cfg` is given."""
    showing = any(arg in ("--cfg", "-c") or arg.startswith("--cfg=") for arg in argv)
    if not showing or not any(arg in ("-m", "--multirun") for arg in argv):
        return argv
    rest = [arg for arg in argv[1:] if arg not in ("-m", "--multirun")]
    return [argv[0], "hydra.mode=MULTIRUN", *rest]


#: generate.py's keys of older genlab versions -> today's (the same name as in train.py and evaluate.py)
SPELLINGS = {"data_dir": "data.data_dir"}


def check_spelling(argv: Sequence[str]) -> None:
    """Stop at `data_dir=DIR` with the key to write (`data.data_dir`, as in train.py and evaluate.py), where
    Hydra would only say `Key 'data_dir' is not in struct`."""
    for arg in argv:
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        if key in SPELLINGS:
            raise SystemExit(
                f"error: generate.py has no key {key}: write {SPELLINGS[key]}={value} (the same name as in "
                "train.py and evaluate.py)"
            )
