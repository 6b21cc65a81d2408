"""genlab's OmegaConf resolvers, registered by the entry points before Hydra reads a config."""

from __future__ import annotations

from omegaconf import OmegaConf

from genlab.launch.gpu_pool import parallel_jobs
from genlab.run_dir import encoder_run


def register_resolvers() -> None:
    """`${genlab_parallel_jobs:2}`: sweep jobs at once, one per visible GPU (hydra/launcher/local_gpus);
    `${genlab_encoder_run:CKPT}`: the encoder run's folder inside the GAN run of CKPT."""
    OmegaConf.register_new_resolver("genlab_parallel_jobs", parallel_jobs, replace=True)
    OmegaConf.register_new_resolver("genlab_encoder_run", encoder_run, replace=True)
