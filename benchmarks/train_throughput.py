"""Training throughput: genlab's `train.py` as a user runs it against a hand-written PyTorch loop.

Both train the same nets (built from the same Hydra config), on the same uint8 data batched by index, with
the same batch size, optimiser and loss, in this process, in alternating rounds after a warm-up. genlab's
side is `train.py`'s trainer, logger, pictures and checkpoints; its images/s are timed over the training
batches only (from the end of batch `warmup` to the end of the last one), so start-up, validation and the
pictures drawn at an epoch's end are left out on both sides.

    python benchmarks/train_throughput.py --data-dir DIR [--device cpu|cuda] [--rounds 5] [--batches 60]

Prints a markdown table and writes benchmarks/results/<host>-<device>-train.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from genlab.instantiate import build, build_group
from genlab.resolvers import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
CASES = {"mnist-vae": ["model=vae", "data=mnist"], "mnist-gan": ["model=gan", "data=mnist"]}


def config(overrides: list[str], data_dir: str, run_dir: Path, accelerator: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[*overrides, f"data.data_dir={data_dir}", f"trainer.accelerator={accelerator}"],
            return_hydra_config=True,
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg


class BatchClock(L.Callback):
    """Times the training batches after the first `warmup` of a fit."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.batches, self.start, self.end = warmup, 0, 0.0, 0.0

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        self.batches += 1
        if self.batches == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def genlab_images_per_s(cfg: DictConfig, datamodule, batches: int, warmup: int) -> float:
    """Images/s of `trainer.fit` as train.py builds it: the config's trainer, logger and callbacks."""
    torch.manual_seed(0)
    model = build(cfg.model, image_shape=list(datamodule.image_shape), _recursive_=False)
    clock = BatchClock(warmup)
    trainer = build(
        cfg.trainer,
        callbacks=[*build_group(cfg.callbacks), clock],
        logger=build_group(cfg.logger) or False,
        max_epochs=1,
        limit_train_batches=batches,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        enable_progress_bar=cfg.trainer.enable_progress_bar,
    )
    trainer.fit(model, datamodule=datamodule)
    return (batches - warmup) * datamodule.batch_size / (clock.end - clock.start)


def loop_images_per_s(cfg: DictConfig, datamodule, batches: int, warmup: int, device: torch.device) -> float:
    """Images/s of the loop one would write by hand: same nets, data, optimiser and loss; nothing else."""
    torch.manual_seed(0)
    model = build(cfg.model, image_shape=list(datamodule.image_shape), _recursive_=False).to(device).train()
    images = datamodule.split_images("train")
    if cfg.model._target_.endswith("GAN"):
        opt_g = build(cfg.model.optimizer_g)(model.generator.parameters())
        opt_d = build(cfg.model.optimizer_d)(model.discriminator.parameters())
    else:
        opt = build(cfg.model.optimizer)(model.parameters())
    order = torch.randperm(len(images))
    size = datamodule.batch_size
    start = 0.0
    for step in range(batches):
        batch = images[order[step * size : (step + 1) * size]].to(device, non_blocking=True)
        real = datamodule.to_model_range(batch)
        if cfg.model._target_.endswith("GAN"):
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
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step + 1 == warmup:
            start = time.perf_counter()
    return (batches - warmup) * size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    register_resolvers()
    device = torch.device(args.device)
    accelerator = "gpu" if args.device == "cuda" else "cpu"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            cfg = config(CASES[case], args.data_dir, Path(tmp) / case, accelerator)
            datamodule = build(cfg.data, _convert_="all")
            datamodule.setup("fit")
            genlab, loop = [], []
            for _ in range(args.rounds):  # alternating, so drifts in machine speed hit both sides alike
                genlab.append(genlab_images_per_s(cfg, datamodule, args.batches, args.warmup))
                loop.append(loop_images_per_s(cfg, datamodule, args.batches, args.warmup, device))
            ratios = [g / h for g, h in zip(genlab, loop, strict=True)]
            results[case] = {
                "genlab_images_per_s": statistics.median(genlab),
                "loop_images_per_s": statistics.median(loop),
                "ratio_median": statistics.median(ratios),
                "ratios": ratios,
                "batch_size": datamodule.batch_size,
            }
    threads = torch.get_num_threads()
    print(f"| case ({args.device}, {threads} threads) | genlab images/s | loop images/s | ratio |")
    print("|---|---|---|---|")
    for case, r in results.items():
        genlab, loop = r["genlab_images_per_s"], r["loop_images_per_s"]
        print(f"| {case} | {genlab:.0f} | {loop:.0f} | {r['ratio_median']:.3f} |")
    out = ROOT / "benchmarks" / "results" / f"{platform.node()}-{args.device}-train.json"
    out.write_text(json.dumps({"threads": threads, "torch": torch.__version__, **results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
