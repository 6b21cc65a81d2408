"""Each wrapper of genlab.compat against the upstream behaviour it relies on: these fail first when a
Lightning, torch/TensorBoard or Hydra upgrade changes a private API (pyproject.toml pins the Lightning range
they were run with)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto.summary_pb2 import Summary
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from genlab import compat
from genlab.callbacks.last_checkpoint import LastCheckpoint
from genlab.loggers import TensorBoardLogger
from hydra_plugins.genlab_resumable_sweeper import resumable_sweeper


class TwoOptimizers(L.LightningModule):
    """A tiny model trained like genlab's GAN: manual optimisation, two optimizers stepped per batch."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.first, self.second = nn.Linear(2, 1), nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        for optimizer, net in zip(self.optimizers(), (self.first, self.second), strict=True):
            loss = net(x).pow(2).mean()
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
        self.log("loss", loss, on_step=True, on_epoch=False)

    def configure_optimizers(self):
        return [torch.optim.SGD(self.first.parameters(), 0.1), torch.optim.SGD(self.second.parameters(), 0.1)]

    def train_dataloader(self):
        data = torch.utils.data.TensorDataset(torch.randn(12, 2, generator=torch.Generator().manual_seed(0)))
        return torch.utils.data.DataLoader(data, batch_size=2)


class StepsLogger(Logger):
    """Records the step of every `log_metrics` call that carries `loss`."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []

    name, version = "steps", 0

    def log_metrics(self, metrics, step=None) -> None:
        if "loss" in metrics:
            self.steps.append(step)

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


def fit(tmp_path: Path, *callbacks: L.Callback, model: L.LightningModule | None = None, **trainer_args):
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_epochs=1,
        logger=trainer_args.pop("logger", False),
        callbacks=list(callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=any(isinstance(callback, ModelCheckpoint) for callback in callbacks),
        log_every_n_steps=1,
        **trainer_args,
    )
    trainer.fit(model or TwoOptimizers())
    return trainer


# Hydra's basic sweeper


def parse(*arguments: str):
    return OverridesParser.create().parse_overrides(list(arguments))


def test_the_grid_is_split_as_genlab_relies_on():
    jobs = compat.split_sweep_arguments(parse("a=1,2", "b=x,y", "c=3"), None)
    assert jobs == [
        [
            ["a=1", "b=x", "c=3"],
            ["a=1", "b=y", "c=3"],
            ["a=2", "b=x", "c=3"],
            ["a=2", "b=y", "c=3"],
        ]
    ]
    assert compat.split_sweep_arguments(parse("a=1,2", "b=x", "a=5,6"), None) == [
        [["a=5", "b=x"], ["a=6", "b=x"]]
    ]
    assert compat.split_sweep_arguments(parse("a=1,2,3"), 2) == [[["a=1"], ["a=2"]], [["a=3"]]]


def test_the_basic_sweeper_hands_its_launcher_each_batch(tmp_path, monkeypatch):
    """ResumableSweeper replaces `launcher` after BasicSweeper.setup; `sweep` must launch through it."""
    # looked up now: a Hydra plugin scan in an earlier test re-executes both modules in place
    assert issubclass(resumable_sweeper.ResumableSweeper, compat.hydra_basic_sweeper.BasicSweeper)
    launched = []

    class FakeLauncher:
        def launch(self, job_overrides, initial_job_idx):
            launched.append(([list(job) for job in job_overrides], initial_job_idx))
            return [SimpleNamespace(return_value=None) for _ in job_overrides]

    monkeypatch.setattr(Plugins, "instantiate_launcher", lambda self, **kwargs: FakeLauncher())
    context = SimpleNamespace(
        config_loader=SimpleNamespace(load_sweep_config=lambda master_config, sweep_overrides: None)
    )
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    sweeper = compat.hydra_basic_sweeper.BasicSweeper(max_batch_size=2, params={"a": "1,2"})
    sweeper.setup(hydra_context=context, task_function=lambda cfg: None, config=config)
    assert isinstance(sweeper.launcher, FakeLauncher)
    sweeper.sweep(["b=x,y"])
    assert launched == [([["a=1", "b=x"], ["a=1", "b=y"]], 0), ([["a=2", "b=x"], ["a=2", "b=y"]], 2)]
    assert (tmp_path / "multirun.yaml").is_file()


def test_the_resumable_sweeper_survives_hydras_plugin_scan():
    """The scan executes Hydra's core plugins and then every module of hydra_plugins again, in place."""
    import hydra._internal.core_plugins

    import hydra_plugins

    Plugins._scan_all_plugins([hydra._internal.core_plugins, hydra_plugins])
    module = sys.modules["hydra_plugins.genlab_resumable_sweeper.resumable_sweeper"]
    assert issubclass(module.ResumableSweeper, compat.hydra_basic_sweeper.BasicSweeper)
    assert module.ResumableSweeper(max_batch_size=None).launcher is None  # BasicSweeper.__init__ ran


# torch's SummaryWriter (TensorBoard event files)


def test_the_file_writer_is_the_one_tensorboard_events_go_through(tmp_path):
    writer = SummaryWriter(str(tmp_path))
    file_writer = compat.event_file_writer(writer)
    seen = []
    add_summary = file_writer.add_summary

    def counting(summary, global_step=None, walltime=None):
        seen.append([value.tag for value in summary.value])
        add_summary(summary, global_step, walltime)

    file_writer.add_summary = counting
    writer.add_scalar("a", 1.0, global_step=0)
    assert seen == [["a"]]
    writer.close()
    reopened = compat.event_file_writer(writer)  # reopened after a close, as add_scalar would
    reopened.add_summary(Summary(value=[Summary.Value(tag="b", simple_value=2.0)]), 1)
    reopened.flush()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["a", "b"]


def test_the_metric_prefix_is_lightnings(tmp_path):
    ours = TensorBoardLogger(tmp_path, name="ours", prefix="run")
    theirs = LightningTensorBoardLogger(tmp_path, name="theirs", prefix="run")
    assert compat.metric_prefix(ours) == "run-" and compat.metric_prefix(TensorBoardLogger(tmp_path)) == ""
    for logger in (ours, theirs):
        logger.log_metrics({"loss": 1.0}, step=0)
        logger.experiment.flush()
    tags = [EventAccumulator(logger.log_dir).Reload().Tags()["scalars"] for logger in (ours, theirs)]
    assert tags[0] == tags[1] == ["run-loss"]


# Lightning's loops, modules and dispatch


def test_the_logger_step_is_the_step_lightning_logs_a_batch_at(tmp_path):
    seen = []

    class Steps(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append((compat.logger_step(trainer), trainer.global_step))

    logger = StepsLogger()
    fit(tmp_path, Steps(), logger=logger)
    assert [step for step, _ in seen] == logger.steps == list(range(6))
    assert [global_step for _, global_step in seen] == list(range(2, 13, 2))  # two optimizer steps a batch


def test_the_attached_trainer(tmp_path):
    model = TwoOptimizers()
    assert compat.attached_trainer(model) is None
    found = []

    class Attached(L.Callback):
        def on_train_start(self, trainer, pl_module):
            found.append(compat.attached_trainer(pl_module) is trainer)

    fit(tmp_path, Attached(), model=model, max_steps=2)
    assert found == [True]


def test_the_undeclared_trainer_attributes(tmp_path):
    seen = []

    class Reads(L.Callback):
        def on_train_start(self, trainer, pl_module):
            seen.append(
                (
                    compat.trainer_datamodule(trainer) is trainer.datamodule,
                    compat.trainer_callbacks(trainer) == trainer.callbacks,
                    compat.logging_interval(trainer),
                )
            )

    datamodule = L.LightningDataModule.from_datasets(
        train_dataset=torch.utils.data.TensorDataset(torch.randn(4, 2)), batch_size=2
    )
    reads = Reads()
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_steps=1,
        logger=False,
        callbacks=[reads],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=3,
    )
    trainer.fit(TwoOptimizers(), datamodule=datamodule)
    assert seen == [(True, True, 3)]
    assert compat.trainer_datamodule(trainer) is datamodule and reads in compat.trainer_callbacks(trainer)


def test_model_checkpoint_internals_keep_their_signatures():
    expected = {
        "_should_skip_saving_checkpoint": ["self", "trainer"],
        "_monitor_candidates": ["self", "trainer"],
        "_save_none_monitor_checkpoint": ["self", "trainer", "monitor_candidates"],
    }
    for name, parameters in expected.items():
        assert list(inspect.signature(getattr(ModelCheckpoint, name)).parameters) == parameters, name


@pytest.mark.filterwarnings("ignore:Using ModelCheckpoint with manual optimization")
@pytest.mark.parametrize(("batches", "saved_at"), [(6, 12), (4, 8)])
def test_the_final_save_happens_unless_this_step_was_saved(tmp_path, batches, saved_at):
    """Steps 4, 8 (every 4 optimizer steps); the end at step 12 adds a save, at step 8 it is already saved."""
    checkpoint = LastCheckpoint(tmp_path / "checkpoints", every_n_train_steps=4)
    written = []
    save = checkpoint._save_checkpoint
    checkpoint._save_checkpoint = lambda trainer, path: (
        written.append(trainer.global_step) or save(trainer, path)
    )
    fit(tmp_path, checkpoint, limit_train_batches=batches)
    assert written[-1] == saved_at and written.count(saved_at) == 1
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == saved_at
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.ckpt"]


def test_a_fast_dev_run_saves_no_final_checkpoint(tmp_path):
    fit(tmp_path, LastCheckpoint(tmp_path / "checkpoints"), fast_dev_run=True)
    assert not (tmp_path / "checkpoints").exists()


def test_lightning_skips_a_hook_set_to_none(tmp_path):
    calls = []

    class Counting(L.Callback):
        def on_train_batch_end(self, *args):
            calls.append("batch")

        def on_train_end(self, *args):
            calls.append("end")

    skipped, kept = Counting(), Counting()
    compat.skip_hook(skipped, "on_train_batch_end")
    model = TwoOptimizers()
    compat.skip_hook(model, "on_train_batch_end")
    assert skipped.on_train_batch_end is None and model.on_train_batch_end is None
    fit(tmp_path, skipped, model=model, max_steps=4)
    assert calls == ["end"]
    calls.clear()
    fit(tmp_path, kept, max_steps=4)
    assert calls == ["batch", "batch", "end"]


def test_batch_norm_layers_of_every_kind():
    layers = [
        nn.BatchNorm1d(2),
        nn.BatchNorm2d(2),
        nn.BatchNorm3d(2),
        nn.SyncBatchNorm(2),
        nn.LazyBatchNorm2d(),
    ]
    assert all(compat.is_batch_norm(layer) for layer in layers)
    assert not any(
        compat.is_batch_norm(layer) for layer in (nn.LayerNorm(2), nn.InstanceNorm2d(2), nn.GroupNorm(1, 2))
    )
