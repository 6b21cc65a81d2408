"""The flow model's benchmark pieces: the hand-written loop computes genlab's loss, the sampling part runs
its three solver settings, and re-measured training cases replace only their own rows."""

from __future__ import annotations

import sys

import pytest
import torch
from helpers import ROOT, TINY_FLOW, build_model

sys.path.insert(0, str(ROOT))  # benchmarks/ is a folder of scripts beside src/, as `python -m` sees it
from benchmarks import flow_sampling, train_throughput  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_NET = ["model.net.channels=32", "model.net.channel_mult=[1]", "model.net.attention_levels=[]"]


def test_the_hand_written_flow_loop_computes_genlab_s_loss(make_cfg):
    cfg = make_cfg("experiment=best_mnist_flow", *TINY_NET)
    datamodule = train_throughput.prepared(cfg)
    model = build_model(cfg)
    loop = train_throughput.hand_written_loop(cfg, datamodule, torch.device("cpu"), same_implementation=True)
    assert isinstance(loop, train_throughput.HandWrittenFlowLoop)
    assert loop.clip == 1.0 and loop.ema is not None and loop.opt.defaults["fused"]
    loop.net.load_state_dict(model.net.state_dict())
    images = loop.batch()
    torch.manual_seed(3)
    genlab = model.loss(images)
    torch.manual_seed(3)
    torch.testing.assert_close(loop.loss(images), genlab)  # the same draws of x0, t and the path's noise
    before = [p.clone() for p in loop.ema.parameters()]
    loop.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, loop.ema.parameters(), strict=True))


def test_the_sampling_part_runs_each_solver_setting(mnist_dir):
    results = flow_sampling.measure(mnist_dir=str(mnist_dir), imagenette_dir="", device="cpu", quick=True)
    settings = results["settings"]
    assert list(settings) == list(flow_sampling.SETTINGS)
    assert settings["euler-10"]["nfe"] == 10 and settings["midpoint-50"]["nfe"] == 50
    assert settings["dopri5"]["nfe"] > 0 and settings["dopri5"]["atol"] == 1e-5
    assert results["batch_size"] == 2 and "untrained" in results["net"]
    assert "| dopri5 (atol 1e-05, rtol 1e-05) |" in flow_sampling.table(results)


def test_re_measured_cases_replace_only_their_rows():
    previous = {
        "training": {"mnist-vae": {"r": 1}, "mnist-flow": {"r": 2}},
        "knobs": {"mnist-gan compile": {}},
    }
    measured = {"training": {"mnist-flow": {"r": 3}}, "knobs": {}}
    assert train_throughput.merge(previous, measured) == {
        "training": {"mnist-vae": {"r": 1}, "mnist-flow": {"r": 3}},
        "knobs": {"mnist-gan compile": {}},
    }


def test_the_sampling_part_takes_a_trained_checkpoint(make_cfg, mnist_dir, tmp_path):
    from omegaconf import open_dict

    from genlab.train import train

    cfg = make_cfg(
        *TINY_FLOW, "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "callbacks=[model_checkpoint]"
    )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    results = flow_sampling.measure(
        mnist_dir=str(mnist_dir), imagenette_dir="", device="cpu", quick=True, checkpoint=str(ckpt)
    )
    assert results["trained"] and str(ckpt) in results["net"]
    assert results["settings"]["euler-10"]["nfe"] == 10 and "dopri5" in flow_sampling.table(results)
