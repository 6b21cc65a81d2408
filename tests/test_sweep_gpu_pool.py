"""One GPU per sweep job, checked on a simulated pool of GPU indices (no GPU needed)."""

import multiprocessing
import random

import pytest

from genlab.errors import GenlabError
from genlab.launch import gpu_pool, pin_gpu
from genlab.launch.gpu_pool import GPUPool, parallel_jobs


def test_random_claims_never_share_a_gpu(tmp_path):
    """Workers claim and release at random; at every moment the held GPUs are distinct, and a claim fails
    only when every GPU is held."""
    devices = ["0", "1", "2"]
    workers = [GPUPool(devices, tmp_path) for _ in range(5)]
    rng = random.Random(0)
    for _ in range(300):
        worker = rng.choice(workers)
        if worker.held and rng.random() < 0.5:
            worker.release(worker.held[0])
        elif not worker.held:
            held_before = [d for w in workers for d in w.held]
            device = worker.try_claim()
            if device is None:
                assert sorted(held_before) == devices
            else:
                assert device not in held_before
        held = [d for w in workers for d in w.held]
        assert len(held) == len(set(held)) <= len(devices)


def claim_in_child(lock_dir, devices, queue, release_event) -> None:
    pool = GPUPool(devices, lock_dir)
    queue.put(pool.try_claim())
    release_event.wait(30)


def test_processes_get_distinct_gpus_and_exit_releases(tmp_path):
    devices = ["0", "1"]
    context = multiprocessing.get_context("fork")
    queue, done = context.Queue(), context.Event()
    children = [
        context.Process(target=claim_in_child, args=(tmp_path, devices, queue, done)) for _ in range(3)
    ]
    for child in children:
        child.start()
    claims = sorted((queue.get(timeout=30) for _ in children), key=str)
    assert claims[:2] == ["0", "1"] and claims[2] is None  # the third worker finds no free GPU
    assert GPUPool(devices, tmp_path).try_claim() is None
    done.set()
    for child in children:
        child.join(30)
    assert GPUPool(devices, tmp_path).try_claim() == "0"  # a dead worker's lock is gone


def test_claim_times_out_with_advice(tmp_path):
    holder = GPUPool(["0"], tmp_path)
    assert holder.claim(wait_s=0) == "0"
    with pytest.raises(GenlabError, match="n_jobs=1"):
        GPUPool(["0"], tmp_path).claim(wait_s=0.2, poll_s=0.05)


def test_pin_this_process_keeps_its_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(pin_gpu, "_claim", None)
    monkeypatch.setattr(pin_gpu, "cuda_started", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    other_worker = GPUPool(["4"], tmp_path)
    assert other_worker.try_claim() == "4"
    assert pin_gpu.pin_this_process(str(tmp_path)) == "5"
    assert pin_gpu.pin_this_process(str(tmp_path)) == "5"  # the next job of this worker: same GPU
    import os

    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"


def test_no_gpu_means_no_pinning_and_two_cpu_jobs(tmp_path, monkeypatch):
    monkeypatch.setattr(pin_gpu, "_claim", None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert pin_gpu.pin_this_process(str(tmp_path)) is None
    assert parallel_jobs(2) == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert parallel_jobs(2) == 4
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(gpu_pool.shutil, "which", lambda name: None)
    assert gpu_pool.visible_gpus() == []
