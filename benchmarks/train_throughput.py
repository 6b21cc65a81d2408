"""Training throughput: genlab's `train.py` as a user runs it against a hand-written PyTorch loop.

Both train the same nets (built from the same Hydra config), on the same uint8 data batched by index, with
the same batch size, optimiser and loss, in this process, in alternating rounds after a warm-up. genlab's
side is `train.py`'s model, trainer, logger, progress bar, pictures and checkpoints (genlab.train's
`build_model` and `build_trainer`); its images/s are timed over the training batches only (from the end of
batch `warmup` to the end of the last one), so start-up, validation and the pictures drawn at the epoch's
end are left out on both sides. A case's batches are capped by its epoch (the Imagenette subset has 18).

The knobs table runs genlab against genlab with one setting changed (model.compile, model.channels_last,
data.device=auto, trainer.float32_matmul_precision=high), alternating in the same way; compile's time is the
extra time of its warm-up batches.

    python -m benchmarks.train_throughput --mnist-dir DIR --imagenette-dir DIR [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from genlab.instantiate import build, build_group
from genlab.resolvers import register_resolvers
from genlab.speed import split_speed_settings
from genlab.train import build_model, build_trainer

ROOT = Path(__file__).resolve().parents[1]
IMAGENETTE_64 = ["data=imagenette", "data.image_size=64"]


@dataclass
class Case:
    """A training case: its config overrides, batches timed per round and warm-up batches."""

    overrides: list[str]
    batches: int
    warmup: int
    rounds: int = 3
    #: knob name -> the overrides that turn it on (measured against this case's defaults)
    knobs: dict[str, list[str]] = field(default_factory=dict)


CASES = {
    "mnist-vae": Case(["model=vae", "data=mnist"], batches=150, warmup=20, rounds=5),
    "mnist-gan": Case(
        ["model=gan", "data=mnist"],
        batches=100,
        warmup=10,
        rounds=5,
        knobs={"compile": ["model.compile=true"]},
    ),
    "imagenette-vae-64": Case(["model=vae", *IMAGENETTE_64], batches=18, warmup=3),
    "imagenette-gan-64": Case(["model=gan", *IMAGENETTE_64], batches=18, warmup=3),
    "imagenette-sngan-64": Case(
        ["experiment=imagenette_gan_sngan"],
        batches=18,
        warmup=3,
        knobs={"channels_last": ["model.channels_last=true"]},
    ),
}
#: knobs that only act on a GPU: measured there, on every case
GPU_KNOBS = {
    "data.device=auto": ["data.device=auto"],
    "tf32 (float32_matmul_precision=high)": ["trainer.float32_matmul_precision=high"],
    "channels_last": ["model.channels_last=true"],
    "compile": ["model.compile=true"],
}


def config(overrides: list[str], data_dirs: dict[str, str], run_dir: Path, device: str) -> DictConfig:
    """train.py's config for `overrides`, one epoch without a sanity check, on `device`."""
    data = next((o.split("=", 1)[1] for o in overrides if o.startswith("data=")), "imagenette")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                *overrides,
                f"data.data_dir={data_dirs[data]}",
                f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
                "trainer.max_epochs=1",
                "trainer.limit_val_batches=1",
                "trainer.num_sanity_val_steps=0",
            ],
            return_hydra_config=True,
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BatchClock(L.Callback):
    """Times a fit's training batches after the first `warmup`, and the warm-up itself (which holds
    torch.compile's time); synchronises the GPU at those two points only."""

    def __init__(self, warmup: int, batches: int) -> None:
        self.warmup, self.batches, self.seen = warmup, batches, 0
        self.begin = self.start = self.end = 0.0

    def on_train_start(self, trainer: L.Trainer, *args) -> None:
        synchronize(trainer.strategy.root_device)
        self.begin = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        self.seen += 1
        if self.seen in (self.warmup, self.batches):
            synchronize(trainer.strategy.root_device)
            if self.seen == self.warmup:
                self.start = time.perf_counter()
            else:
                self.end = time.perf_counter()


@dataclass
class Timing:
    images_per_s: float
    warmup_s: float
    peak_memory_mb: float | None = None


def peak_memory(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def time_genlab(cfg: DictConfig, datamodule, batches: int, warmup: int, device: torch.device) -> Timing:
    """Images/s of `trainer.fit` as train.py builds it: its model, trainer, logger and callbacks."""
    torch.manual_seed(0)
    reset_peak_memory(device)
    model = build_model(cfg, datamodule)
    clock = BatchClock(warmup, batches)
    with open_dict(cfg):
        cfg.trainer.limit_train_batches = batches
    trainer = build_trainer(cfg, build_group(cfg.logger), [clock])
    trainer.fit(model, datamodule=datamodule)
    images = (batches - warmup) * datamodule.batch_size
    return Timing(images / (clock.end - clock.start), clock.start - clock.begin, peak_memory(device))


def time_loop(cfg: DictConfig, datamodule, batches: int, warmup: int, device: torch.device) -> Timing:
    """Images/s of the loop one would write by hand: same nets, data, optimiser and loss; nothing else."""
    torch.manual_seed(0)
    reset_peak_memory(device)
    model_config, _ = split_speed_settings(cfg.model)
    model = build(model_config, image_shape=list(datamodule.image_shape), _recursive_=False)
    model = model.to(device).train()
    gan = hasattr(model, "discriminator")
    if gan:
        opt_g = build(cfg.model.optimizer_g)(model.generator.parameters())
        opt_d = build(cfg.model.optimizer_d)(model.discriminator.parameters())
    else:
        opt = build(cfg.model.optimizer)(model.parameters())
    images = datamodule.split_images("train")
    order = torch.randperm(len(images))
    size = datamodule.batch_size
    synchronize(device)
    begin = start = time.perf_counter()
    for step in range(batches):
        batch = images[order[step * size : (step + 1) * size]].to(device, non_blocking=True)
        real = datamodule.to_model_range(batch)
        if gan:
            fake = model.generate(model.sample_latent(size)).detach()
            d_loss = model.d_loss_fn(model.discriminator(real), model.discriminator(fake))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            model.discriminator.requires_grad_(False)
            g_loss = model.g_loss_fn(model.discriminator(model.generate(model.sample_latent(size))))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            model.discriminator.requires_grad_(True)
        else:
            loss = model.loss(real)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if step + 1 == warmup:
            synchronize(device)
            start = time.perf_counter()
    synchronize(device)
    end = time.perf_counter()
    return Timing((batches - warmup) * size / (end - start), start - begin, peak_memory(device))


def prepared(cfg: DictConfig):
    datamodule = build(cfg.data, _convert_="all")
    datamodule.setup("fit")
    return datamodule


def epoch_batches(datamodule, wanted: int) -> int:
    return min(wanted, len(datamodule.split_images("train")) // datamodule.batch_size)


def compare(case: Case, data_dirs: dict[str, str], device: torch.device, tmp: Path) -> dict[str, Any]:
    """genlab against the hand-written loop, alternating rounds; the median of the per-round ratios."""
    cfg = config(case.overrides, data_dirs, tmp / "genlab", device.type)
    datamodule = prepared(cfg)
    batches = epoch_batches(datamodule, case.batches)
    genlab, loop = [], []
    for _ in range(case.rounds):  # alternating, so drifts in machine speed hit both sides alike
        genlab.append(time_genlab(cfg, datamodule, batches, case.warmup, device))
        loop.append(time_loop(cfg, datamodule, batches, case.warmup, device))
    ratios = [g.images_per_s / h.images_per_s for g, h in zip(genlab, loop, strict=True)]
    return {
        "genlab_images_per_s": statistics.median(t.images_per_s for t in genlab),
        "loop_images_per_s": statistics.median(t.images_per_s for t in loop),
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
        "batch_size": datamodule.batch_size,
        "batches": batches,
        "warmup": case.warmup,
        "genlab_peak_memory_mb": genlab[-1].peak_memory_mb,
        "loop_peak_memory_mb": loop[-1].peak_memory_mb,
    }


def knob(case: Case, overrides: list[str], data_dirs, device: torch.device, tmp: Path) -> dict[str, Any]:
    """genlab with a knob turned on against genlab's defaults, alternating rounds."""
    base_cfg = config(case.overrides, data_dirs, tmp / "base", device.type)
    knob_cfg = config([*case.overrides, *overrides], data_dirs, tmp / "knob", device.type)
    datamodule = prepared(base_cfg)
    knob_data = prepared(knob_cfg) if any(o.startswith("data.") for o in overrides) else datamodule
    batches = epoch_batches(datamodule, case.batches)
    base, on = [], []
    for _ in range(case.rounds):
        base.append(time_genlab(base_cfg, datamodule, batches, case.warmup, device))
        on.append(time_genlab(knob_cfg, knob_data, batches, case.warmup, device))
    return {
        "default_images_per_s": statistics.median(t.images_per_s for t in base),
        "knob_images_per_s": statistics.median(t.images_per_s for t in on),
        "speedup_median": statistics.median(
            k.images_per_s / b.images_per_s for b, k in zip(base, on, strict=True)
        ),
        # the extra time of the knob's warm-up batches: torch.compile's compile time
        "extra_warmup_s": statistics.median(k.warmup_s - b.warmup_s for b, k in zip(base, on, strict=True)),
        "first_round_extra_warmup_s": on[0].warmup_s - base[0].warmup_s,
    }


def quick_case(case: Case) -> Case:
    return Case(case.overrides, batches=4, warmup=2, rounds=1, knobs=case.knobs)


def measure(
    *, mnist_dir: str, imagenette_dir: str, device: str, quick: bool = False, cases: list[str] | None = None
) -> dict[str, Any]:
    """The training table and the knobs table."""
    register_resolvers()
    torch_device = torch.device(device)
    data_dirs = {"mnist": mnist_dir, "imagenette": imagenette_dir}
    selected = {name: CASES[name] for name in (cases or CASES)}
    if quick:
        selected = {name: quick_case(case) for name, case in selected.items()}
    training, knobs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in selected.items():
            training[name] = compare(case, data_dirs, torch_device, Path(tmp) / name)
            case_knobs = {} if quick else GPU_KNOBS if device == "cuda" else case.knobs
            for knob_name, overrides in case_knobs.items():
                path = Path(tmp) / name / knob_name
                knobs[f"{name} {knob_name}"] = knob(case, overrides, data_dirs, torch_device, path)
    return {"training": training, "knobs": knobs}


def memory(value: float | None) -> str:
    return "" if value is None else f" | {value:.0f}"


def table(results: dict[str, Any]) -> str:
    training, knobs = results["training"], results["knobs"]
    gpu = any(r["genlab_peak_memory_mb"] is not None for r in training.values())
    extra = " genlab / loop peak MB |" if gpu else ""
    lines = [
        "### Training: genlab's train.py against a hand-written loop",
        f"| case | batch | genlab images/s | loop images/s | ratio (median) | ratios |{extra}",
        "|---|---|---|---|---|---|" + ("---|" if gpu else ""),
    ]
    for name, r in training.items():
        ratios = " ".join(f"{v:.3f}" for v in r["ratios"])
        row = (
            f"| {name} | {r['batch_size']} | {r['genlab_images_per_s']:.0f} | {r['loop_images_per_s']:.0f} "
            f"| **{r['ratio_median']:.3f}** | {ratios} |"
        )
        if gpu:
            row += f" {r['genlab_peak_memory_mb']:.0f} / {r['loop_peak_memory_mb']:.0f} |"
        lines.append(row)
    if knobs:
        lines += [
            "",
            "### Knobs: genlab with one setting on, against its defaults",
            "| case and knob | default images/s | with knob images/s | speed-up | extra warm-up s |",
            "|---|---|---|---|---|",
        ]
        for name, r in knobs.items():
            lines.append(
                f"| {name} | {r['default_images_per_s']:.0f} | {r['knob_images_per_s']:.0f} "
                f"| {r['speedup_median']:.2f}x | {r['extra_warmup_s']:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mnist-dir", required=True)
    parser.add_argument("--imagenette-dir", required=True)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--cases", nargs="*", default=None, choices=list(CASES))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results = measure(
        mnist_dir=args.mnist_dir,
        imagenette_dir=args.imagenette_dir,
        device=args.device,
        quick=args.quick,
        cases=args.cases,
    )
    print(table(results))


if __name__ == "__main__":
    main()
