"""Training throughput: genlab's `train.py` as a user runs it against a hand-written PyTorch loop.

Both train the same nets (built from the same Hydra config), on the same uint8 data batched by index, with
the same batch size, optimiser and loss, in this process. genlab's side is `train.py`'s model, trainer,
logger, progress bar, pictures and checkpoints (genlab.train's `build_model` and `build_trainer`). The flow
model's loop is written out whole (`HandWrittenFlowLoop`): the U-Net, torchcfm's path, Adam, gradient
clipping and torch's `AveragedModel` EMA, none of genlab's model code.

The two alternate batch by batch: after each of genlab's training batches a callback runs one step of the
hand-written loop (on its own copy of the nets) and times it apart. genlab's time is everything between two
loop steps: its batch, its hooks, callbacks, logging and progress bar. On a shared 2-core machine, whose
speed drifts by +-10% from second to second, alternating this finely puts both sides under the same
conditions; whole alternating runs did not. After `warmup` batches the timed batches are cut into `windows`;
the reported ratio is the median of the windows' ratios (loop time / genlab time, i.e. genlab's images/s over
the loop's). A case's batches are capped by its epoch. On a GPU both sides are synchronised at each switch.

The knobs table times genlab with one setting on (model.compile, model.channels_last, data.device=auto,
trainer.float32_matmul_precision=high) against the same loop; its speed-up is that ratio over the default's.
compile's time is the extra time of the warm-up batches.

    python -m benchmarks.run --mnist-dir DIR --imagenette-dir DIR --only training [--device cuda] [--quick]
"""

from __future__ import annotations

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
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from genlab.instantiate import build, build_group
from genlab.mappings import as_dict
from genlab.models.flow import PATHS, FlowMatching
from genlab.resolvers import register_resolvers
from genlab.speed import split_speed_settings
from genlab.train import build_model, build_trainer

ROOT = Path(__file__).resolve().parents[1]
# The study's conv nets at 64 px, batch 16 (the presets' 48 costs ~2 s a batch on a 2-core CPU).
IMAGENETTE_64 = ["data=imagenette", "data.image_size=64", "data.batch_size=16"]


@dataclass
class Case:
    """A training case: its config overrides, timed batches, warm-up batches and windows."""

    overrides: list[str]
    batches: int
    warmup: int
    windows: int = 5
    #: knob name -> the overrides that turn it on, timed on this CPU (on a GPU: all of GPU_KNOBS)
    knobs: dict[str, list[str]] = field(default_factory=dict)


CASES = {
    "mnist-vae": Case(["model=vae", "data=mnist"], batches=170, warmup=20),
    "mnist-gan": Case(
        ["model=gan", "data=mnist"], batches=150, warmup=15, knobs={"compile": ["model.compile=true"]}
    ),
    # best_mnist_flow: its U-Net, Adam 5e-4 (fused), batch 128, gradients clipped at norm 1, EMA 0.999;
    # ~1.4 s a batch on one CPU thread, hence few batches
    "mnist-flow": Case(["experiment=best_mnist_flow", "data=mnist"], batches=35, warmup=5),
    "imagenette-vae-64": Case(["model=vae", *IMAGENETTE_64], batches=12, warmup=2),
    "imagenette-gan-64": Case(["model=gan", *IMAGENETTE_64], batches=12, warmup=2),
    "imagenette-sngan-64": Case(
        ["experiment=imagenette_gan_sngan", "data.batch_size=16"],
        batches=12,
        warmup=2,
        knobs={"channels_last": ["model.channels_last=true"]},
    ),
}
GPU_KNOBS = {
    "data.device=auto": ["data.device=auto"],
    "tf32": ["trainer.float32_matmul_precision=high"],
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


#: optimiser arguments that pick an implementation (the same update): a hand-written loop leaves them out
IMPLEMENTATION_FLAGS = ("fused", "foreach")


def optimizer(config: DictConfig, same_implementation: bool):
    """The `_partial_` optimiser of `config`; without `same_implementation`, torch's default implementation
    of it (the one `torch.optim.Adam(params, lr=..., betas=...)` gives)."""
    config = OmegaConf.to_container(config)
    if not same_implementation:
        config = {key: value for key, value in config.items() if key not in IMPLEMENTATION_FLAGS}
    return build(config)


class HandWrittenLoop:
    """The loop one would write by hand: same nets, data, optimiser and loss; nothing else. With
    `same_implementation`, its optimisers are built exactly as genlab's (e.g. fused); without, they are
    torch's default implementation of the same optimiser and hyperparameters, as one writes them."""

    def __init__(self, cfg: DictConfig, datamodule, device: torch.device, same_implementation: bool) -> None:
        model_config, _ = split_speed_settings(cfg.model)
        model = build(model_config, image_shape=list(datamodule.image_shape), _recursive_=False)
        self.model = model.to(device).train()
        self.gan = hasattr(model, "discriminator")
        if self.gan:
            generator, discriminator = model.generator.parameters(), model.discriminator.parameters()
            self.opt_g = optimizer(cfg.model.optimizer_g, same_implementation)(generator)
            self.opt_d = optimizer(cfg.model.optimizer_d, same_implementation)(discriminator)
        else:
            self.opt = optimizer(cfg.model.optimizer, same_implementation)(model.parameters())
        self.use_data(datamodule, device)

    def use_data(self, datamodule, device: torch.device) -> None:
        self.datamodule, self.device = datamodule, device
        self.images = datamodule.split_images("train")
        self.order = torch.randperm(len(self.images))
        self.size, self.steps = datamodule.batch_size, 0

    def batch(self) -> torch.Tensor:
        """The next batch of training images, in the model's pixel range."""
        start = (self.steps * self.size) % (len(self.images) - self.size)
        self.steps += 1
        batch = self.images[self.order[start : start + self.size]].to(self.device, non_blocking=True)
        return self.datamodule.to_model_range(batch)

    def step(self) -> None:
        model, size = self.model, self.size
        real = self.batch()
        if self.gan:
            fake = model.generate(model.sample_latent(size)).detach()
            d_loss = model.d_loss_fn(model.discriminator(real), model.discriminator(fake))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            model.discriminator.requires_grad_(False)
            g_loss = model.g_loss_fn(model.discriminator(model.generate(model.sample_latent(size))))
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
            model.discriminator.requires_grad_(True)
        else:
            loss = model.loss(real)["loss"]
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()


class HandWrittenFlowLoop(HandWrittenLoop):
    """Flow matching by hand: the config's U-Net (genlab.nets.unet.UNet), torchcfm's conditional path and
    target velocity, the MSE, the optimiser, `trainer.gradient_clip_val` by `clip_grad_norm_` and an EMA of
    the weights by torch's `AveragedModel`, updated after each step."""

    def __init__(self, cfg: DictConfig, datamodule, device: torch.device, same_implementation: bool) -> None:
        model = as_dict(cfg.model)
        self.net = build(model["net"], image_shape=list(datamodule.image_shape)).to(device).train()
        self.path = PATHS[model["path"]](sigma=model["sigma"])
        self.opt = optimizer(cfg.model.optimizer, same_implementation)(self.net.parameters())
        self.clip = cfg.trainer.get("gradient_clip_val")
        decay = model["ema_decay"]
        self.ema = (
            None if decay is None else AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(decay))
        )
        self.use_data(datamodule, device)

    def loss(self, x1: torch.Tensor) -> torch.Tensor:
        """The conditional flow matching loss of images `x1`: noise x0, then torchcfm's t, x_t and u_t."""
        t, xt, ut = self.path.sample_location_and_conditional_flow(torch.randn_like(x1), x1)
        return (self.net(t, xt) - ut).pow(2).mean()

    def step(self) -> None:
        loss = self.loss(self.batch())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.clip)
        self.opt.step()
        if self.ema is not None:
            self.ema.update_parameters(self.net)


def hand_written_loop(
    cfg: DictConfig, datamodule, device: torch.device, same_implementation: bool
) -> HandWrittenLoop:
    """The hand-written loop of `cfg`'s model."""
    flow = get_class(cfg.model._target_) is FlowMatching
    loop = HandWrittenFlowLoop if flow else HandWrittenLoop
    return loop(cfg, datamodule, device, same_implementation)


class Interleave(L.Callback):
    """After each of genlab's training batches, one timed step of each hand-written loop."""

    def __init__(self, loops: dict[str, HandWrittenLoop], warmup: int) -> None:
        self.loops, self.warmup = loops, warmup
        self.genlab_s: list[float] = []  # per timed batch
        self.loop_s: dict[str, list[float]] = {name: [] for name in loops}
        self.batches, self.begin, self.last, self.warmup_s = 0, 0.0, 0.0, 0.0

    def on_train_start(self, trainer: L.Trainer, *args) -> None:
        synchronize(trainer.strategy.root_device)
        self.begin = self.last = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        device = trainer.strategy.root_device
        synchronize(device)
        switch = time.perf_counter()
        self.batches += 1
        if self.batches == self.warmup:
            self.warmup_s = switch - self.begin  # genlab's warm-up batches (and torch.compile's time)
        elif self.batches > self.warmup:
            self.genlab_s.append(switch - self.last)
        for name, loop in self.loops.items():
            start = time.perf_counter()
            loop.step()
            synchronize(device)
            if self.batches > self.warmup:
                self.loop_s[name].append(time.perf_counter() - start)
        self.last = time.perf_counter()


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def same_implementation_differs(cfg: DictConfig) -> bool:
    """Whether genlab's optimisers name an implementation that torch's default is not (e.g. fused)."""
    keys = ("optimizer_g", "optimizer_d") if "optimizer_g" in cfg.model else ("optimizer",)
    return any(cfg.model[key].get(flag) for key in keys for flag in IMPLEMENTATION_FLAGS)


def interleaved(
    cfg: DictConfig, datamodule, batches: int, warmup: int, windows: int, device, default_loop: bool = True
) -> dict:
    """One fit of genlab with the hand-written loops interleaved: per-window images/s of each.

    "loop": torch's default optimiser implementation (what one writes by hand), when `default_loop`;
    "same_loop": the loop with genlab's optimisers exactly, when they differ from the default or
    `default_loop` is off. The ratio to the latter is genlab's own per-step overhead.
    """
    torch.manual_seed(0)
    reset_peak_memory(device)
    loops = {}
    if default_loop:
        loops["loop"] = hand_written_loop(cfg, datamodule, device, same_implementation=False)
    if not default_loop or same_implementation_differs(cfg):
        loops["same_loop"] = hand_written_loop(cfg, datamodule, device, same_implementation=True)
    clock = Interleave(loops, warmup)
    model = build_model(cfg, datamodule)
    with open_dict(cfg):
        cfg.trainer.limit_train_batches = batches
    trainer = build_trainer(cfg, build_group(cfg.logger), [clock])
    trainer.fit(model, datamodule=datamodule)
    size, timed = datamodule.batch_size, len(clock.genlab_s)
    bounds = [round(i * timed / windows) for i in range(windows + 1)]

    def per_window(seconds: list[float]) -> list[float]:
        return [(b - a) * size / sum(seconds[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]

    genlab = per_window(clock.genlab_s)
    result: dict[str, Any] = {
        "genlab_images_per_s": statistics.median(genlab),
        "batch_size": size,
        "threads": torch.get_num_threads(),
        "timed_batches": timed,
        "warmup_s": clock.warmup_s,
        "peak_memory_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    }
    for name, seconds in clock.loop_s.items():
        loop = per_window(seconds)
        ratios = [g / h for g, h in zip(genlab, loop, strict=True)]
        prefix = "" if name == "loop" else "same_"
        result |= {
            f"{name}_images_per_s": statistics.median(loop),
            f"{prefix}ratio_median": statistics.median(ratios),
            f"{prefix}ratios": ratios,
        }
    return result


def prepared(cfg: DictConfig):
    datamodule = build(cfg.data, _convert_="all")
    datamodule.setup("fit")
    return datamodule


def epoch_batches(datamodule, wanted: int) -> int:
    return min(wanted, len(datamodule.split_images("train")) // datamodule.batch_size)


def run_case(case: Case, overrides: list[str], data_dirs, device: torch.device, tmp: Path) -> dict:
    cfg = config([*case.overrides, *overrides], data_dirs, tmp, device.type)
    datamodule = prepared(cfg)
    batches = epoch_batches(datamodule, case.batches)
    return interleaved(cfg, datamodule, batches, case.warmup, case.windows, device)


def quick_case(case: Case) -> Case:
    return Case(case.overrides, batches=4, warmup=1, windows=1, knobs=case.knobs)


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
            training[name] = default = run_case(case, [], data_dirs, torch_device, Path(tmp) / name)
            case_knobs = {} if quick else GPU_KNOBS if device == "cuda" else case.knobs
            for knob_name, overrides in case_knobs.items():
                path = Path(tmp) / f"{name}-{knob_name}"
                result = run_case(case, overrides, data_dirs, torch_device, path)
                result["speedup"] = result["ratio_median"] / default["ratio_median"]
                result["extra_warmup_s"] = result["warmup_s"] - default["warmup_s"]
                knobs[f"{name} {knob_name}"] = result
    return {"training": training, "knobs": knobs}


def merge(previous: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """A results file's training part with some cases measured again: their rows (and knobs) replaced."""
    return {part: previous.get(part, {}) | results[part] for part in ("training", "knobs")}


def table(results: dict[str, Any]) -> str:
    training, knobs = results["training"], results["knobs"]
    gpu = any(r["peak_memory_mb"] is not None for r in training.values())
    lines = [
        "### Training: genlab's train.py against a hand-written loop, batch by batch",
        "The loop uses torch's default implementation of the same optimiser; the last two columns time a "
        "loop with genlab's exact optimisers (e.g. fused Adam), where they differ: genlab's own overhead.",
        "",
        "| case | batch | genlab images/s | loop images/s | ratio (median) | window ratios "
        "| same-optimiser loop images/s | ratio to it |" + (" peak GPU MB |" if gpu else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if gpu else ""),
    ]
    for name, r in training.items():
        ratios = " ".join(f"{v:.3f}" for v in r["ratios"])
        memory = f" {r['peak_memory_mb']:.0f} |" if gpu else ""
        same = (
            f"{r['same_loop_images_per_s']:.0f} | {r['same_ratio_median']:.3f}"
            if "same_ratio_median" in r
            else "(the same loop) | -"
        )
        lines.append(
            f"| {name} | {r['batch_size']} | {r['genlab_images_per_s']:.0f} | {r['loop_images_per_s']:.0f} "
            f"| **{r['ratio_median']:.3f}** | {ratios} | {same} |{memory}"
        )
    if knobs:
        lines += [
            "",
            "### Knobs: genlab with one setting on (same loop as reference)",
            "| case and knob | genlab images/s | ratio to the loop | speed-up | extra warm-up s |",
            "|---|---|---|---|---|",
        ]
        for name, r in knobs.items():
            lines.append(
                f"| {name} | {r['genlab_images_per_s']:.0f} | {r['ratio_median']:.3f} | {r['speedup']:.2f}x "
                f"| {r['extra_warmup_s']:.1f} |"
            )
    return "\n".join(lines)
