"""Train one genlab run (`python train.py model=gan data=mnist`) or a sweep (`python train.py -m ...`)."""

import sys

import hydra
from omegaconf import DictConfig

from genlab.cli import multirun_as_override
from genlab.overrides import check_overrides
from genlab.resolvers import register_resolvers


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> dict[str, float] | float:
    from genlab.train import run  # torch and Lightning: imported once the config is composed (genlab.cli)

    return run(cfg)


if __name__ == "__main__":
    register_resolvers()
    sys.argv = multirun_as_override(sys.argv)
    check_overrides("train")
    main()
