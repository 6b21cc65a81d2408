"""Measure a trained genlab model: `python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt`."""

import hydra
from omegaconf import DictConfig

from genlab.overrides import check_overrides


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from genlab.evaluate import run  # torch and Lightning: imported once the config is composed (genlab.cli)

    run(cfg)


if __name__ == "__main__":
    check_overrides("eval")
    main()
