"""Sweeps: one GPU per job, failure records, and the VAE-vs-GAN report (`python compare.py SWEEP_DIR`)."""

from omegaconf import OmegaConf

from genlab.sweeps.gpu_pool import parallel_jobs

# `hydra.launcher.n_jobs: ${genlab_parallel_jobs:2}` in conf/hydra/launcher/local_gpus.yaml: one job per GPU.
# Registered on import; train.py imports genlab.train, which imports this package before Hydra reads it.
OmegaConf.register_new_resolver("genlab_parallel_jobs", parallel_jobs, replace=True)
