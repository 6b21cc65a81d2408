"""benchmarks/flow_solvers.py on a tiny flow checkpoint: one evaluate.py run per solver setting with that
setting's NFE, the ODE round trip, one JSON and a plot; bad settings are refused by name."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from helpers import ROOT, SMALL_EVAL, TINY_FLOW
from omegaconf import open_dict

from genlab.errors import ConfigError
from genlab.train import train

sys.path.insert(0, str(ROOT))  # benchmarks/ is a folder of scripts beside src/, as `python -m` sees it
from benchmarks import flow_solvers  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

#: a one-level U-Net without attention, two batches, only the checkpoint callback (no pictures)
TINY_RUN = (
    *TINY_FLOW,
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "logger=none",
    "callbacks=[model_checkpoint]",
)


@pytest.mark.slow  # 30 s: an evaluate.py run per setting
def test_the_study_evaluates_each_setting_and_writes_a_json_and_a_plot(make_cfg, mnist_dir, tmp_path):
    cfg = make_cfg(*TINY_RUN)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    out = tmp_path / "study" / "flow_solvers.json"
    small = [o for o in SMALL_EVAL if not o.startswith(("n_samples=", "vae."))]
    results = flow_solvers.main(
        [
            *("--ckpt", str(ckpt), "--data-dir", str(mnist_dir), "--out", str(out), "--n-samples", "6"),
            *("--settings", "euler:2", "dopri5:1e-3", "--round-trip-images", "4"),
            *("--eval", *small, "classifier=false", f"cache_dir={tmp_path / 'cache'}"),
        ]
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert results["checkpoint_sampler"] == {"method": "euler", "nfe": 2}
    rows = {row["name"]: row for row in results["settings"]}
    assert list(rows) == ["euler:2", "dopri5:1e-3"]
    # evaluate.py's sampling spent each setting's NFE
    assert rows["euler:2"]["nfe"] == 2
    assert rows["dopri5:1e-3"]["nfe"] >= 6 and rows["dopri5:1e-3"]["atol"] == 1e-3
    for row in rows.values():
        assert math.isfinite(row["fid"]) and row["s_per_1000_samples"] > 0
        metrics = json.loads(Path(row["metrics_file"]).read_text())
        assert metrics["metrics"]["fid"] == row["fid"] and metrics["protocol"]["n_samples"] == 6
        trip = row["round_trip"]
        assert trip["n_images"] == 4 and trip["mse"] >= 0
        assert trip["psnr_db"] == pytest.approx(10 * math.log10(1 / trip["mse"]))
    assert rows["euler:2"]["round_trip"]["nfe_encode"] == rows["euler:2"]["round_trip"]["nfe_generate"] == 2


@pytest.mark.parametrize(
    "setting", ["rk4:10", "euler", "midpoint:x", "midpoint:5", "dopri5:fast", "dopri5:0"]
)
def test_a_bad_setting_is_refused_by_name(setting):
    with pytest.raises(ConfigError, match="--settings"):
        flow_solvers.parse_setting(setting)
