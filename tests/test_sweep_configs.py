"""Sweep presets and launcher configs compose, and expand to the expected jobs."""

import pytest
from helpers import compose_train
from omegaconf import OmegaConf
from sweep_grid import sweep_jobs


@pytest.mark.parametrize(
    ("preset", "narrow", "widen", "counts"),
    [
        ("vae_vs_gan", ["data=mnist"], ["seed=1,2,3,4,5"], (12, 6, 20)),
        ("study_a", ["experiment=study_a_mnist_gan"], ["seed=1,2,3"], (4, 1, 12)),
        ("study_b_lr", ["model.optimizer_g.lr=0.0002"], ["seed=1,2"], (5, 1, 10)),
        ("mnist_best_vs_study", ["experiment=best_mnist_gan"], ["seed=0,1,2,3,4"], (12, 3, 20)),
        ("mnist_gan_ablation", ["ablation=none,no_ema"], ["seed=0,1"], (8, 2, 16)),
        ("mnist_study_gan_tricks", ["ablation=none,ttur"], ["seed=0,1,2"], (5, 2, 15)),
        ("imagenette_best_vs_study", ["experiment=best_imagenette_gan"], ["seed=0,1,2"], (4, 1, 12)),
        ("mnist_three_families", ["seed=0"], ["seed=0,1,2,3"], (9, 3, 12)),
        ("imagenette_three_families", ["experiment=best_imagenette_flow_32px"], ["seed=0"], (9, 3, 3)),
    ],
)
def test_preset_expands_to_the_grid(preset, narrow, widen, counts):
    """The preset's grid as is, narrowed and widened by command-line overrides."""
    cfg = compose_train(f"sweep={preset}")
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    assert "pin_gpu" in cfg.hydra.callbacks
    jobs = sweep_jobs(cfg)
    assert (len(jobs), len(sweep_jobs(cfg, narrow)), len(sweep_jobs(cfg, widen))) == counts
    assert len({tuple(job) for job in jobs}) == len(jobs)


@pytest.mark.parametrize("preset", ["vae_vs_gan", "study_a"])
def test_every_job_composes(preset):
    for job in sweep_jobs(compose_train(f"sweep={preset}"), ["seed=1"]):
        cfg = compose_train(f"sweep={preset}", *job)
        choices = cfg.hydra.runtime.choices
        assert choices.nets == f"{choices.model}_{choices.data}"  # each model gets its nets for its data
        assert cfg.model._target_.rsplit(".", 1)[-1] == choices.model.upper()


def test_study_presets_pick_the_study_settings():
    cfg = compose_train("sweep=study_b_lr", "model.optimizer_g.lr=0.0005")
    assert cfg.model._target_ == "genlab.models.GAN" and cfg.model.noise == "uniform"
    assert cfg.model.optimizer_d.lr == 0.0005  # G and D share the swept rate
    jobs = sweep_jobs(compose_train("sweep=study_a"), [])
    assert {job[0] for job in jobs} == {
        f"experiment=study_a_{data}_{model}" for data in ("mnist", "imagenette") for model in ("vae", "gan")
    }


def test_local_launcher_runs_one_job_per_gpu(monkeypatch):
    cfg = compose_train("sweep=vae_vs_gan")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert cfg.hydra.launcher.n_jobs == 2  # the CPU setting
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert cfg.hydra.launcher.n_jobs == 3


def test_slurm_launcher_composes():
    cfg = compose_train(
        "sweep=vae_vs_gan",
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=4",
    )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert launcher["partition"] == "gpu" and launcher["timeout_min"] > 0
    assert cfg.hydra.launcher.tasks_per_node == 4  # one task per GPU for DDP


def test_ddp_trainer_composes():
    cfg = compose_train("trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2")
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.devices == 4 and cfg.trainer.num_nodes == 2


def test_mnist_best_vs_study_jobs_compose_with_their_presets_nets():
    for job in sweep_jobs(compose_train("sweep=mnist_best_vs_study"), ["seed=0"]):
        cfg = compose_train("sweep=mnist_best_vs_study", *job)
        choices = cfg.hydra.runtime.choices
        expected = {"best_mnist_vae": "vae_mnist_conv", "best_mnist_gan": "gan_mnist_dcgan"}
        assert choices.nets == expected.get(choices.experiment, f"{choices.model}_mnist")
        assert cfg.trainer.max_epochs == 20  # one budget for all four, over the presets' own


def test_imagenette_best_vs_study_trains_all_four_at_64px_with_their_own_budgets():
    budgets = {}
    for job in sweep_jobs(compose_train("sweep=imagenette_best_vs_study")):
        cfg = compose_train("sweep=imagenette_best_vs_study", *job)
        choices = cfg.hydra.runtime.choices
        assert cfg.data.image_size == 64 and choices.data == "imagenette"
        budgets[choices.experiment] = (choices.nets, cfg.trainer.max_epochs, cfg.trainer.max_steps)
    assert budgets == {
        "best_imagenette_gan": ("gan_imagenette_dcgan", -1, 5600),
        "best_imagenette_vae": ("vae_imagenette_dcgan", -1, 3600),
        "study_a_imagenette_gan": ("gan_imagenette", 100, -1),
        "study_a_imagenette_vae": ("vae_imagenette", 200, -1),
    }


# What each ablation job must differ in from its preset (the preset's own value in brackets is checked too).
ABLATION_SWITCHES = {
    "none": {},
    "no_ema": {"model.ema_decay": None},
    "no_batch_norm_d": {"model.discriminator.batch_norm": False},
    "half_width": {
        f"model.{net}.{key}": value
        for net in ("generator", "discriminator")
        for key, value in (("width", 32), ("max_width", 256))
    },
    "hinge_loss": {"model.loss": "hinge"},
    "spectral_norm": {"model.discriminator.spectral_norm": True},
    "upsample_nearest": {"model.generator.upsample": "nearest"},
    "label_smoothing": {"model.label_smoothing": 0.1},
    "feature_matching": {"model.feature_matching": True},
    "ttur": {"model.optimizer_g.lr": 1e-4, "model.optimizer_d.lr": 4e-4},
    "ema": {"model.ema_decay": 0.999},
}


@pytest.mark.parametrize("preset", ["mnist_gan_ablation", "mnist_study_gan_tricks"])
def test_each_ablation_job_is_its_preset_with_one_switch_changed(preset):
    """Every job changes its switch from the preset's value and leaves everything else of the model alone."""
    jobs = sweep_jobs(compose_train(f"sweep={preset}"))
    reference = compose_train(f"sweep={preset}", *jobs[0])  # ablation=none
    assert reference.hydra.runtime.choices.ablation == "none"
    for job in jobs[1:]:
        cfg = compose_train(f"sweep={preset}", *job)
        switch = ABLATION_SWITCHES[cfg.hydra.runtime.choices.ablation]
        changed = {
            key for key, value in model_values(cfg).items() if model_values(reference).get(key) != value
        }
        assert changed == set(switch), job
        assert all(OmegaConf.select(cfg, key) == value for key, value in switch.items()), job
        assert cfg.trainer.max_epochs == 10


def model_values(cfg) -> dict:
    return dict(flatten(OmegaConf.to_container(cfg.model, resolve=True), "model."))


def flatten(tree, prefix):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@pytest.mark.parametrize("preset", ["best_mnist_gan", "best_mnist_vae", "best_mnist_flow"])
def test_best_presets_repeat_the_first_seed_of_results(preset):
    """`python train.py experiment=<best preset>` is seed 0 of docs/results.md's three; seed=N still wins."""
    assert compose_train(f"experiment={preset}").seed == 0
    assert compose_train("sweep=mnist_best_vs_study", f"experiment={preset}", "seed=2").seed == 2


@pytest.mark.parametrize(
    ("preset", "size"), [("mnist_three_families", 28), ("imagenette_three_families", 32)]
)
def test_the_three_families_sweeps_train_each_familys_preset(preset, size):
    """One preset per family, each with its own nets, at one image size."""
    targets = set()
    for job in sweep_jobs(compose_train(f"sweep={preset}"), ["seed=0"]):
        cfg = compose_train(f"sweep={preset}", *job)
        targets.add(cfg.model._target_.rsplit(".", 1)[-1])
        assert cfg.hydra.runtime.choices.nets.startswith(cfg.hydra.runtime.choices.model)
        assert (cfg.data.get("image_size") or 28) == size
    assert targets == {"VAE", "GAN", "FlowMatching"}
