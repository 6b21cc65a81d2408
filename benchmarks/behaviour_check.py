"""Does a refactor change what genlab computes? Train the same presets with a baseline commit and with this
tree, and compare the weights tensor for tensor; draw pictures from a baseline checkpoint with both.

    python -m benchmarks.behaviour_check --data-dir DIR [--baseline 348479e] [--batches 100]

Each preset trains `--batches` fixed-seed batches (one epoch, two validation batches, no logger, checkpoint
callbacks only) in a worktree of the baseline and here. Then `generate.py` draws from the baseline's
checkpoints with both trees, and the PNGs are compared pixel for pixel. Exits 1 on any difference; writes a
JSON summary to `--out`/behaviour.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("best_mnist_vae", "best_mnist_gan", "study_a_mnist_vae", "study_a_mnist_gan")
#: state_dict keys whose part moved into a sub-module (old name -> new name)
RENAMES = {
    "latent_prior.": "prior.",
    "log_sigma": "likelihood.raw_log_sigma",
    "calibrated_mse": "likelihood.calibrated_mse",
}


def run(tree: Path, args: list[str], log: Path) -> None:
    """Run `python <args>` in the source tree `tree` (its own src/ first on the path), logging to `log`."""
    env = {
        **os.environ,
        "PYTHONPATH": str(tree / "src"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
    }
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, *args], cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed in {tree} (exit {done.returncode}); see {log}")


def train(tree: Path, preset: str, data_dir: str, batches: int, out: Path, reuse: bool = False) -> Path:
    """Train `preset` for `batches` batches in `tree`; returns its last.ckpt (with `reuse`, one already
    there is kept)."""
    run_dir = out / preset
    # float sums depend on the thread count: a reused run must have been trained with the same one
    stamp = run_dir / "threads.txt"
    threads = os.environ.get("OMP_NUM_THREADS", "2")
    last = run_dir / "checkpoints" / "last.ckpt"
    if reuse and last.is_file() and stamp.is_file() and stamp.read_text() == threads:
        return last
    shutil.rmtree(run_dir, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    run(
        tree,
        [
            "train.py",
            f"experiment={preset}",
            f"data.data_dir={data_dir}",
            "trainer.max_epochs=1",
            f"trainer.limit_train_batches={batches}",
            "trainer.limit_val_batches=2",
            "logger=none",
            "callbacks=[model_checkpoint]",
            f"hydra.run.dir={run_dir}",
        ],
        out / f"{preset}.log",
    )
    stamp.write_text(threads)
    return last


def renamed(key: str) -> str:
    for old, new in RENAMES.items():
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def compare_weights(old_ckpt: Path, new_ckpt: Path) -> dict:
    """Tensor-for-tensor comparison of two checkpoints' state_dicts (old keys renamed)."""
    old = {renamed(k): v for k, v in torch.load(old_ckpt, weights_only=True)["state_dict"].items()}
    new = torch.load(new_ckpt, weights_only=True)["state_dict"]
    differing = [k for k in sorted(set(old) & set(new)) if not torch.equal(old[k], new[k])]
    largest = max((float((old[k].double() - new[k].double()).abs().max()) for k in differing), default=0.0)
    return {
        "tensors": len(new),
        "only_old": sorted(set(old) - set(new)),
        "only_new": sorted(set(new) - set(old)),
        "differing": differing,
        "largest_difference": largest,
        "identical": set(old) == set(new) and not differing,
    }


def draw(tree: Path, ckpt: Path, out: Path) -> dict[str, np.ndarray]:
    """generate.py's pictures of `ckpt` drawn by `tree`, as arrays."""
    run(
        tree,
        ["generate.py", f"ckpt_path={ckpt}", f"out={out}", "device=cpu", "seed=0"],
        out.with_suffix(".log"),
    )
    return {png.stem: np.asarray(Image.open(png)) for png in sorted(out.glob("*.png"))}


def compare_pictures(old: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> dict:
    same = {name: bool(name in new and np.array_equal(old[name], new[name])) for name in old}
    return {"pictures": same, "identical": bool(old) and set(old) == set(new) and all(same.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="a folder with MNIST/raw")
    parser.add_argument("--baseline", default="348479e", help="the commit to compare against")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temp folder)")
    parser.add_argument(
        "--reuse-baseline",
        action="store_true",
        help="keep the baseline runs already in --out (same settings)",
    )
    args = parser.parse_args()
    out = (args.out or Path(tempfile.mkdtemp(prefix="behaviour_"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_dir = str(Path(args.data_dir).resolve())
    baseline = out / "baseline_tree"
    if not baseline.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=ROOT, check=True
        )
    threads = os.environ.get("OMP_NUM_THREADS", "2")
    summary: dict = {"baseline": args.baseline, "batches": args.batches, "threads": threads, "presets": {}}
    try:
        for preset in args.presets:
            old_ckpt = train(
                baseline, preset, data_dir, args.batches, out / "baseline", reuse=args.reuse_baseline
            )
            new_ckpt = train(ROOT, preset, data_dir, args.batches, out / "current")
            weights = compare_weights(old_ckpt, new_ckpt)
            old_pictures = draw(baseline, old_ckpt, out / "baseline" / f"{preset}_pictures")
            new_pictures = draw(ROOT, old_ckpt, out / "current" / f"{preset}_pictures_of_baseline_ckpt")
            pictures = compare_pictures(old_pictures, new_pictures)
            summary["presets"][preset] = {"weights": weights, "baseline_checkpoint_pictures": pictures}
            print(
                f"{preset:<20} weights: {weights['tensors']} tensors, "
                f"{'identical' if weights['identical'] else 'DIFFERENT ' + str(weights['differing'][:5])}; "
                f"baseline checkpoint's pictures: {'identical' if pictures['identical'] else pictures}",
                flush=True,
            )
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False)
    (out / "behaviour.json").write_text(json.dumps(summary, indent=2) + "\n")
    ok = all(
        p["weights"]["identical"] and p["baseline_checkpoint_pictures"]["identical"]
        for p in summary["presets"].values()
    )
    print(f"{'all identical' if ok else 'DIFFERENCES'}; summary: {out / 'behaviour.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
