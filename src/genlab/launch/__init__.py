"""Running jobs: one GPU per sweep job (gpu_pool.py, pin_gpu.py), the DDP launch check (ddp.py) and the
failure records of sweep jobs (failures.py)."""
