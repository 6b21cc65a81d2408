"""GAN inversion's settings measured on a trained GAN: how close, how faithful and how slow each setting is,
on the reconstruction protocol's fixed test images.

    python -m benchmarks.inversion_settings --ckpt CKPT --data-dir DIR --out OUT.json
        [--n-images 100] [--steps 100 250 500 1000] [--restarts 1 2] [--feature-weights 0 1]

Per setting (every combination of steps, restarts and feature weight, the other settings at
conf/inversion/default.yaml's values): genlab.reconstruction's scores of the `inversion` method (MSE,
PSNR, SSIM, the feature distance, for MNIST the label kept) and its seconds per image. Writes one JSON and
a table on stdout; conf/inversion/default.yaml's defaults are the cheapest setting within noise of the best.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from genlab.cache import cache_dir
from genlab.checkpoints import checkpoint_datamodule, load_model
from genlab.metrics import classifier
from genlab.metrics.perceptual import for_data
from genlab.metrics.reconstruction import label_kept, pixel_scores, summarise
from genlab.models.inversion import InversionSettings
from genlab.reconstruction import DEFAULT_IMAGES, HYBRID, INVERSION, Reconstructor, fixed_images, with_encoder

ROOT = Path(__file__).resolve().parents[1]


def defaults() -> dict[str, Any]:
    return dict(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "inversion" / "default.yaml")))


def measure(
    ckpt: Path,
    data_dir: str,
    n_images: int,
    steps: Sequence[int],
    restarts: Sequence[int],
    feature_weights: Sequence[float],
    method: str = INVERSION,
) -> dict[str, Any]:
    model = with_encoder(load_model(ckpt), ckpt, None)
    datamodule = checkpoint_datamodule(ckpt, model, {"data_dir": data_dir})
    datamodule.check_available()
    cache = cache_dir(None)
    images, _ = fixed_images(datamodule, "test", n_images, 0, DEFAULT_IMAGES, "--n-images")
    targets = images.float() / 255.0
    digits = classifier.load_or_train(datamodule, cache)[0] if datamodule.has_digit_classifier else None
    scorer = for_data(datamodule, cache)
    rows = []
    for weight in feature_weights:
        for restart in restarts:
            for n_steps in steps:
                # the refinement of `encoder + inversion` takes the steps as its refine_steps
                key = "refine_steps" if method == HYBRID else "steps"
                settings = InversionSettings.from_config(
                    defaults() | {key: n_steps, "restarts": restart, "feature_weight": weight}
                )
                distance = for_data(datamodule, cache, 1.0, weight)
                started = time.perf_counter()
                _, outputs = Reconstructor(model, datamodule, distance, settings)(method, images)
                seconds = time.perf_counter() - started
                per_image = pixel_scores(targets, outputs)
                with torch.no_grad():
                    per_image["feature_distance"] = scorer.feature_term(outputs, targets)
                if digits is not None:
                    per_image["label_kept"] = label_kept(digits, targets, outputs)
                row = {"steps": n_steps, "restarts": restart, "feature_weight": weight}
                row |= summarise(per_image) | {"seconds_per_image": seconds / len(images)}
                rows.append(row)
                print(
                    f"steps {n_steps:5d} restarts {restart} features x{weight:g}: MSE {row['mse']:.4f} "
                    f"PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f} features {row['feature_distance']:.4f}"
                    + (f" label kept {row['label_kept']:.3f}" if digits is not None else "")
                    + f" {row['seconds_per_image']:.3f} s/image",
                    flush=True,
                )
    return {
        "ckpt": str(ckpt),
        "method": method,
        "n_images": len(images),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "other_settings": {
            k: v for k, v in defaults().items() if k not in ("steps", "restarts", "feature_weight")
        },
        "settings": rows,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n-images", type=int, default=100)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 250, 500, 1000])
    parser.add_argument("--restarts", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--feature-weights", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument(
        "--method", default=INVERSION, help="inversion, or `encoder + inversion` (refinement)"
    )
    args = parser.parse_args(argv)
    result = measure(
        args.ckpt, args.data_dir, args.n_images, args.steps, args.restarts, args.feature_weights, args.method
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
