"""`make bench`: every benchmark of genlab, as markdown tables, and one results file.

    python -m benchmarks.run --mnist-dir DIR --imagenette-dir DIR [--device cpu|cuda] [--quick] [--only ...]
        [--cases ...] [--out FILE]

Writes benchmarks/results/<host>-<device>.json (with --quick: <host>-<device>-quick.json), or --out; with
--only, the other parts of an existing results file stay, and with --cases its other training cases.
The parts:
- training: genlab's train.py against a hand-written loop, per case, and the speed knobs
  (benchmarks/train_throughput.py);
- scaling: step time against batch size and image size (benchmarks/scaling.py);
- data_path: genlab's loader against torchvision's, Imagenette's decode against its cache
  (benchmarks/data_path.py);
- evaluation: Inception images/s and a whole `evaluate.py n_samples=2000` (benchmarks/evaluation.py);
- startup: how long `python train.py --help` and an argument error take (benchmarks/startup.py);
- flow_sampling: the flow model's samples/s at three ODE solver settings (benchmarks/flow_sampling.py).

The flow model's new rows alone: `--only training flow_sampling --cases mnist-flow`.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any, cast

import lightning
import torch

from benchmarks import data_path, evaluation, flow_sampling, scaling, startup, train_throughput

PARTS = {
    "startup": startup,
    "training": train_throughput,
    "scaling": scaling,
    "data_path": data_path,
    "evaluation": evaluation,
    "flow_sampling": flow_sampling,
}
RESULTS = Path(__file__).resolve().parent / "results"


def machine(device: str) -> dict[str, object]:
    """What the numbers were measured on."""
    info: dict[str, object] = {
        "host": platform.node(),
        "device": device,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mnist-dir", required=True, help="a folder with MNIST/raw/")
    parser.add_argument("--imagenette-dir", required=True, help="a folder with imagenette2-160/")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="a tiny version, for a smoke test")
    parser.add_argument("--only", nargs="*", choices=list(PARTS), default=list(PARTS))
    parser.add_argument(
        "--cases", nargs="*", choices=list(train_throughput.CASES), help="the training cases (default: all)"
    )
    parser.add_argument("--out", type=Path, help="the results file (default: benchmarks/results/...)")
    parser.add_argument(
        "--flow-ckpt", help="flow_sampling: a trained best_mnist_flow checkpoint (default: an untrained net)"
    )
    args = parser.parse_args()
    for name in ("lightning.pytorch", "lightning.fabric"):  # the tables, not Lightning's start-up notes
        logging.getLogger(name).setLevel(logging.WARNING)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is visible")

    results: dict[str, object] = {"machine": machine(args.device)}
    tables, seconds = [], {}
    for name in args.only:
        started = time.perf_counter()
        cases = {"cases": args.cases} if name == "training" and args.cases else {}
        if name == "flow_sampling" and args.flow_ckpt:
            cases = {"checkpoint": args.flow_ckpt}
        part = PARTS[name].measure(
            mnist_dir=args.mnist_dir,
            imagenette_dir=args.imagenette_dir,
            device=args.device,
            quick=args.quick,
            **cases,
        )
        # some training cases: their own entry, the whole part's time stays
        timed = f"training {' '.join(args.cases)}" if name == "training" and cases else name
        seconds[timed] = round(time.perf_counter() - started, 1)
        results[name] = part
        tables.append(PARTS[name].table(part))
    out = args.out or RESULTS / f"{platform.node()}-{args.device}{'-quick' if args.quick else ''}.json"
    if (set(args.only) < set(PARTS) or args.cases) and out.is_file():
        # some parts (or training cases) measured again: the results file keeps the others
        previous = json.loads(out.read_text())
        seconds = {**previous.get("wall_s", {}), **seconds}
        if args.cases and "training" in results and "training" in previous:
            measured = cast(dict[str, Any], results["training"])
            results["training"] = train_throughput.merge(previous["training"], measured)
        results = {**previous, **results}
    results["wall_s"] = seconds
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    m = results["machine"]
    print(f"\n## genlab benchmarks on {m['host']} ({args.device}, {m['torch_threads']} threads)\n")
    print("\n\n".join(tables))
    print(f"\nwall time per part (s): {seconds}; total {sum(seconds.values()):.0f} s")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
