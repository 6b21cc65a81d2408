"""Pictures from a trained checkpoint: `python generate.py ckpt_path=.../last.ckpt n=64 out=DIR`."""

import hydra
from omegaconf import DictConfig

from genlab.generate import run
from genlab.overrides import check_overrides


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    check_overrides("generate")
    main()
