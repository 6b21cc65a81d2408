"""Pictures from a trained checkpoint: `python generate.py ckpt_path=.../last.ckpt n=64 out=DIR`."""

import sys

import hydra
from omegaconf import DictConfig

from genlab.cli import check_spelling
from genlab.overrides import check_overrides


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    from genlab.generate import run  # torch and Lightning: imported once the config is composed (genlab.cli)

    run(cfg)


if __name__ == "__main__":
    check_spelling(sys.argv[1:])
    check_overrides("generate")
    main()
