"""Train one genlab run (`python train.py model=gan data=mnist`) or a sweep (`python train.py -m ...`)."""

import hydra
from omegaconf import DictConfig

from genlab.train import run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> dict[str, float]:
    return run(cfg)


if __name__ == "__main__":
    main()
