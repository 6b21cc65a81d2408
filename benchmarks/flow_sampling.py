"""Flow sampling throughput: samples/s of `FlowMatching.generate` with best_mnist_flow's U-Net (its config,
conf/experiment/best_mnist_flow.yaml) at three solver settings: euler at 10 function evaluations (NFE),
midpoint at 50 (the preset's) and the adaptive dopri5 at atol = rtol = 1e-5, with the NFE it spent.

The net is untrained (its seeded initialisation) unless `--flow-ckpt` gives a trained best_mnist_flow
checkpoint: a fixed-step solver costs its NFE times one forward pass whatever the weights, but dopri5's NFE
is whatever its error control needs on this velocity field, and an untrained net's field (torchcfm's U-Net
starts at zero) is not a trained one's.

One fixed batch of noise (evaluate.py's sampling batch, 50) per setting, after a warm-up pass; the settings
alternate over `rounds` rounds (3 on a CPU, 5 on a GPU) and each reports its median.

    python -m benchmarks.run --mnist-dir DIR --imagenette-dir DIR --only flow_sampling [--device cuda]
        [--quick] [--flow-ckpt CKPT]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from benchmarks.train_throughput import config
from genlab.checkpoints import load_model
from genlab.instantiate import build
from genlab.modes import sampling_mode
from genlab.resolvers import register_resolvers
from genlab.train import build_model

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = ["experiment=best_mnist_flow", "data=mnist"]
#: name -> the solver settings (`FlowMatching.configure_sampler`)
SETTINGS: dict[str, dict[str, Any]] = {
    "euler-10": {"method": "euler", "nfe": 10},
    "midpoint-50": {"method": "midpoint", "nfe": 50},
    "dopri5": {"method": "dopri5", "atol": 1e-5, "rtol": 1e-5},
}


def clock(device: torch.device) -> float:
    """perf_counter after the device's queued work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def measure(
    *, mnist_dir: str, imagenette_dir: str, device: str, quick: bool = False, checkpoint: str | None = None
) -> dict[str, Any]:
    """Samples/s and seconds per 1,000 samples of each setting; `quick`: a batch of 2, one round;
    `checkpoint`: a trained flow's weights instead of an untrained net.

    `imagenette_dir` is unused; it keeps the benchmarks' common signature."""
    register_resolvers()
    torch_device = torch.device(device)
    model: Any
    if checkpoint:
        model = load_model(checkpoint, map_location=torch_device).to(torch_device)
        net = f"the U-Net of {checkpoint}"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = config(OVERRIDES, {"mnist": mnist_dir}, Path(tmp), device)
        torch.manual_seed(0)
        model = build_model(cfg, build(cfg.data, _convert_="all")).to(torch_device)
        net = "best_mnist_flow's U-Net (conf/nets/flow_mnist.yaml), untrained: torch.manual_seed(0) init"
    batch = 2 if quick else int(OmegaConf.load(ROOT / "conf" / "eval.yaml").batch_size)
    rounds = 1 if quick else 3 if torch_device.type == "cpu" else 5
    z = model.sample_latent(batch, torch.Generator(torch_device).manual_seed(0))
    seconds: dict[str, list[float]] = {name: [] for name in SETTINGS}
    nfe: dict[str, list[int]] = {name: [] for name in SETTINGS}
    with sampling_mode(model):
        model.configure_sampler(method="euler", nfe=2)
        model.generate(z)  # warm-up
        for _ in range(rounds):
            for name, settings in SETTINGS.items():
                model.configure_sampler(**settings)
                start = clock(torch_device)
                model.generate(z)
                seconds[name].append(clock(torch_device) - start)
                nfe[name].append(model.sampler.last_nfe)
    results: dict[str, Any] = {}
    for name, settings in SETTINGS.items():
        median = statistics.median(seconds[name])
        spent = statistics.median(nfe[name])
        results[name] = settings | {
            "nfe": spent,
            "nfe_rounds": nfe[name],
            "samples_per_s": batch / median,
            "s_per_1000_samples": 1000 * median / batch,
            "ms_per_evaluation": 1000 * median / spent,
            "rounds_s": seconds[name],
        }
    return {
        "device": device,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "net": net,
        "trained": bool(checkpoint),
        "parameters": sum(p.numel() for p in model.net.parameters()),
        "weights": "ema",
        "batch_size": batch,
        "rounds": rounds,
        "settings": results,
    }


def table(results: dict[str, Any]) -> str:
    """A markdown table of `measure`'s results."""
    lines = [
        f"### Flow sampling ({results['device']}, {results['threads']} threads): {results['net']}, "
        f"batch {results['batch_size']}, median of {results['rounds']} rounds",
        "dopri5's NFE depends on the velocity field"
        + ("." if results.get("trained") else ": on an untrained net it says nothing of a trained one's."),
        "",
        "| solver | NFE | samples/s | s per 1,000 samples | ms per evaluation of the batch |",
        "|---|---|---|---|---|",
    ]
    for r in results["settings"].values():
        solver = (
            f"{r['method']} (atol {r['atol']:g}, rtol {r['rtol']:g})"
            if "atol" in r
            else f"{r['method']}, NFE {r['nfe']}"
        )
        lines.append(
            f"| {solver} | {r['nfe']:.0f} | {r['samples_per_s']:.1f} | {r['s_per_1000_samples']:.1f} "
            f"| {r['ms_per_evaluation']:.0f} |"
        )
    return "\n".join(lines)
