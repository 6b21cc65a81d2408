"""Tiny fake sweep dirs in the layout `python train.py -m` writes, for the report and notebook tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import save_image

TARGETS = {"vae": "genlab.models.VAE", "gan": "genlab.models.GAN", "flow": "genlab.models.flow.FlowMatching"}
CURVES = {"vae": ("train/loss",), "gan": ("train/d_loss", "train/g_loss"), "flow": ("train/loss",)}


def write_fake_run(
    run_dir: Path,
    model: str,
    data: str,
    seed: int,
    metrics: dict[str, float] | None = None,
    failure: str | None = None,
    finished: bool = True,
    extra: tuple[str, ...] = (),
    sampling: dict[str, Any] | None = None,
) -> None:
    """One job folder: .hydra records, TensorBoard scalars, last.ckpt, metrics.json (with evaluate.py's
    protocol.sampling when `sampling` is given) and a sample grid."""
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True)
    overrides = [f"model={model}", f"data={data}", f"seed={seed}", "trainer.max_epochs=1", *extra]
    OmegaConf.save(OmegaConf.create(overrides), hydra_dir / "overrides.yaml")
    OmegaConf.save({"seed": seed, "model": {"_target_": TARGETS[model]}}, hydra_dir / "config.yaml")
    OmegaConf.save(
        {"hydra": {"runtime": {"choices": {"model": model, "data": data}}}}, hydra_dir / "hydra.yaml"
    )
    writer = SummaryWriter(run_dir / "tensorboard")
    for step in range(5):
        for tag in CURVES[model]:
            writer.add_scalar(tag, 10.0 / (step + 1) + seed, step)
    writer.add_scalar("val/d_real" if model == "gan" else "val/loss", float(seed), 4)
    writer.close()
    if failure is not None:
        (run_dir / "failed.json").write_text(json.dumps({"reason": failure, "error": "DivergedError"}))
        return
    if finished:
        (run_dir / "checkpoints").mkdir()
        (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
        (run_dir / "finished.json").write_text(json.dumps({"time/train_minutes": 1.5 + seed}))
    if metrics is not None:
        # evaluate.py's layout: numbers under "metrics" (with the real floor), settings under "protocol"
        record = {
            "metrics": {"real_floor": {"fid": 1.0, "kid_mean": 0.0001}, **metrics},
            "protocol": {"n_samples": 10} | ({"sampling": sampling} if sampling is not None else {}),
        }
        (run_dir / "metrics.json").write_text(json.dumps(record))
    channels = 1 if data == "mnist" else 3
    (run_dir / "images" / "samples").mkdir(parents=True)
    for epoch in range(2):
        grid = torch.rand(4, channels, 8, 8, generator=torch.Generator().manual_seed(seed))
        save_image(grid, run_dir / "images" / "samples" / f"epoch_{epoch:03d}.png", nrow=2)


#: FID above the GAN's, per model family
FID_OFFSET = {"vae": 30.0, "gan": 0.0, "flow": -20.0}


def fake_sampling(model: str, seed: int) -> dict[str, Any] | None:
    """evaluate.py's protocol.sampling of a fake run: none for the VAE (evaluated before it was recorded), one
    forward pass for the GAN, 50 midpoint evaluations for the flow."""
    if model == "vae":
        return None
    settings = (
        {"method": "midpoint", "nfe": 50} if model == "flow" else {"method": "one forward pass", "nfe": 1}
    )
    seconds = 20.0 + seed if model == "flow" else 0.5 + 0.1 * seed
    return settings | {"seconds_per_1000_samples": seconds, "device": "cpu", "batch_size": 50}


def write_fake_sweep(
    sweep_dir: Path, models: tuple[str, ...] = ("vae", "gan")
) -> dict[str, dict[str, list[float]]]:
    """`models` on MNIST, 2 seeds each plus a diverged GAN seed and a killed VAE seed; returns the fid
    and precision values written per model."""
    values: dict[str, dict[str, list[float]]] = {model: {"fid": [], "precision": []} for model in models}
    job = 0
    for model in models:
        for seed in (1, 2):
            metrics = {
                "fid": 50.0 + 10 * seed + FID_OFFSET[model],
                "precision": 0.5 + 0.1 * seed,
                "kid_mean": 0.01 * seed,
                "settings": {"num_samples": 64, "feature_net": "fake"},
            } | ({"iwae": -90.0 - seed} if model == "vae" else {})
            metrics |= {"bits_per_dim": 1.5 + 0.1 * seed} if model == "flow" else {}
            values[model]["fid"].append(metrics["fid"])
            values[model]["precision"].append(metrics["precision"])
            write_fake_run(
                sweep_dir / str(job), model, "mnist", seed, metrics, sampling=fake_sampling(model, seed)
            )
            job += 1
    write_fake_run(sweep_dir / str(job), "gan", "mnist", 3, failure="train/d_loss = nan at step 3")
    write_fake_run(sweep_dir / str(job + 1), "vae", "mnist", 3, finished=False)
    return values
