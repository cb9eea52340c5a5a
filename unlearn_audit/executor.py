"""Where reference models are trained: in this process, in a process pool, or on a Ray cluster.

Every backend runs the same unit of work, :func:`train_chunk`: train a few models (as one vectorised
ensemble when the architecture allows it), measure their test accuracy and write each one into
the :class:`~unlearn_audit.store.Store`. The caller only ever loads from the store, so a run that
is interrupted keeps every chunk that finished, and the next run skips them.

* ``local`` — in this process, chunk after chunk (ensembles of up to ``chunk_size`` models);
* ``process`` — a pool of ``workers`` processes (spawned, one torch thread each); the training
  tensors travel once per worker through shared memory;
* ``ray`` — one Ray task per chunk, ``gpus_per_task`` GPUs each (fractions allowed, e.g. 0.25 puts
  four tasks on a GPU). Uses the running Ray instance, else ``ray.init()`` (``RAY_ADDRESS``
  selects a cluster). The store must be on a filesystem every node sees.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from unlearn_audit.errors import ConfigError, WorkerError
from unlearn_audit.training.ensemble import train_ensemble
from unlearn_audit.training.loop import Accelerator, accuracy
from unlearn_audit.training.recipe import Recipe
from unlearn_audit.training.trainer import init_model
from unlearn_audit.training.user_trainer import fit_with

BACKENDS = ("local", "process", "ray")
DEFAULT_CHUNK = 16


@dataclass(frozen=True)
class TrainJob:
    """One model to train: its store key and manifest fields, seed and training positions."""

    key: str
    fields: dict
    seed: int
    indices: np.ndarray  # positions into TrainData.x
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainData:
    """What every job of a run shares: the data, the recipe, the device and the store."""

    x: torch.Tensor
    y: torch.Tensor
    eval_x: torch.Tensor  # accuracy is measured here (the split's test set) and kept in the manifest
    eval_y: torch.Tensor
    recipe: Recipe
    num_classes: int
    store_root: str
    accel: Accelerator = field(default_factory=Accelerator)
    ensemble: bool = True
    # with a user trainer (recipe.trainer): the whole dataset and the dataset indices of x's rows,
    # since that trainer is handed a dataset and dataset indices
    user_data: tuple | None = None


def train_chunk(data: TrainData, jobs: Sequence[TrainJob]) -> list[dict]:
    """Train ``jobs`` and write each model into the store; returns one summary dict per model.

    Builders that share a store share the work: a model is trained only under its store lock
    (:meth:`~unlearn_audit.store.Store.key_lock`). This chunk first trains the models whose locks
    are free, then waits for the others (in key order, so two builders never wait on each other)
    and trains only those that the builder holding them did not finish (it may have been killed).
    A model finished by another builder has ``"trained": False`` in its summary.
    """
    from unlearn_audit.store import Store

    store = Store(data.store_root)
    locks = {job.key: store.key_lock(job.key) for job in jobs}
    try:
        mine = [job for job in jobs if locks[job.key].acquire(blocking=False)]
        results = _train_missing(data, store, mine)
        for job in mine:
            locks[job.key].release()
        theirs = sorted((job for job in jobs if job not in mine), key=lambda job: job.key)
        for job in theirs:
            locks[job.key].acquire(blocking=True)
        return results + _train_missing(data, store, theirs)
    finally:
        for lock in locks.values():
            lock.release()


def _train_missing(data: TrainData, store, jobs: Sequence[TrainJob]) -> list[dict]:
    """Train and store the ``jobs`` whose models the store lacks (their locks are held); summaries
    for all of them. With ``data.ensemble`` the missing models are one vectorised ensemble (stored
    when it finishes); otherwise they are trained one by one, each stored as soon as it is done."""
    results = [{"key": job.key, "accuracy": store.manifest(job.key)["extra"].get("accuracy", float("nan")),
                "seconds": 0.0, "trained": False} for job in jobs if store.has(job.key)]
    missing = [job for job in jobs if not store.has(job.key)]
    vectorised = data.ensemble and data.recipe.trainer is None  # a user trainer runs model by model
    groups = ([missing] if missing else []) if vectorised else [[job] for job in missing]
    for group in groups:
        start = time.perf_counter()
        models = _train_group(data, group)
        seconds = (time.perf_counter() - start) / len(group)
        for job, model in zip(group, models):
            acc = accuracy(model, data.eval_x, data.eval_y, data.accel)
            store.put_tensors(job.key, model.state_dict(), kind="model", fields=job.fields,
                              extra={**job.extra, "accuracy": acc, "seconds": seconds})
            results.append({"key": job.key, "accuracy": acc, "seconds": seconds, "trained": True})
    return results


def _train_group(data: TrainData, group: Sequence[TrainJob]) -> list:
    """The models of ``group``: one vectorised ensemble (or one model), or the user's trainer."""
    if data.recipe.trainer is None:
        return train_ensemble(data.recipe, data.x, data.y, [j.indices for j in group], [j.seed for j in group],
                              num_classes=data.num_classes, accel=data.accel)
    dataset, rows = data.user_data
    return [fit_with(data.recipe.trainer,
                     init_model(data.recipe, data.num_classes, tuple(data.x.shape[1:]), job.seed, data.x, job.indices),
                     dataset, rows[job.indices], seed=job.seed, accel=data.accel) for job in group]


def chunks(jobs: Sequence[TrainJob], size: int) -> list[list[TrainJob]]:
    return [list(jobs[i:i + size]) for i in range(0, len(jobs), size)]


def run_jobs(data: TrainData, jobs: Sequence[TrainJob], *, backend: str = "local", workers: int | None = None,
             chunk_size: int | None = None, gpus_per_task: float = 0.0,
             on_done: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Train ``jobs`` on ``backend``; ``on_done`` gets each chunk's summaries as it finishes.

    ``chunk_size`` caps the models trained together (default 16 with ensembles, else 1); the
    ``process`` and ``ray`` backends also split the work so each of ``workers`` parallel workers
    (default: the CPU count of the machine or the Ray cluster) gets a chunk.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if gpus_per_task < 0:
        raise ConfigError(f"--gpus-per-task must be >= 0, got {gpus_per_task}")
    if not jobs:
        return []
    on_done = on_done or (lambda _results: None)
    size = (DEFAULT_CHUNK if data.ensemble else 1) if chunk_size is None else chunk_size
    if size < 1:
        raise ConfigError(f"chunk size must be at least 1, got {size}")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if backend == "local":
        return _run_local(data, chunks(jobs, size), on_done)
    if backend == "process":
        workers = workers or os.cpu_count() or 1
        return _run_process(data, chunks(jobs, min(size, math.ceil(len(jobs) / workers))), workers, on_done)
    return _run_ray(data, jobs, size, workers, gpus_per_task, on_done)


def _run_local(data, parts, on_done):
    results = []
    for part in parts:
        done = train_chunk(data, part)
        on_done(done)
        results += done
    return results


# -- process pool ------------------------------------------------------------------------------

_WORKER_DATA: TrainData | None = None


def _init_worker(data: TrainData) -> None:
    global _WORKER_DATA
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    torch.set_num_threads(1)
    _WORKER_DATA = data


def _worker_chunk(jobs: list[TrainJob]) -> list[dict]:
    return train_chunk(_WORKER_DATA, jobs)


def _worker_context():
    """The fork server where the platform has one (Linux, macOS), else spawn (Windows)."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["unlearn_audit.executor", "torch._dynamo"])
    return ctx


def start_early(backend: str) -> None:
    """Start what ``backend`` needs before its first task: for ``process``, the fork server, whose
    imports (torch, ~2 s) then overlap the caller's own preparation (loading the dataset) instead of
    delaying the first worker."""
    if backend == "process" and _worker_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _run_process(data, parts, workers, on_done):
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # forkserver: workers fork from a clean server that imported torch once (spawn, the fallback,
    # imports it in every worker; plain fork after torch started its thread pools can deadlock). The server
    # lives as long as this process and also preloads torch._dynamo, which torch.optim imports on
    # first use (~1.3 s): later pools (bench and verify build several banks) start in ~0.3 s.
    ctx = _worker_context()
    pool = ProcessPoolExecutor(max_workers=min(workers, len(parts)), initializer=_init_worker, initargs=(data,),
                               mp_context=ctx)
    results, pending = [], {pool.submit(_worker_chunk, part) for part in parts}
    try:
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    done = future.result()
                except BrokenProcessPool:
                    raise WorkerError(
                        f"a worker process of the process backend died ({len(results)} models finished and are "
                        f"kept in the store). Common causes: it ran out of memory (use fewer workers), or a "
                        f"Python script started the pool without the `if __name__ == \"__main__\":` guard that "
                        f"multiprocessing needs (the workers re-import the script); or use --backend local"
                    ) from None
                on_done(done)
                results += done
    except BaseException:
        for future in pending:
            future.cancel()
        for proc in list(getattr(pool, "_processes", {}).values()):  # stop chunks in flight now
            proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


# -- Ray ---------------------------------------------------------------------------------------

def _ray_chunk(data: TrainData, jobs: list[TrainJob]) -> list[dict]:
    torch.set_num_threads(1)
    return train_chunk(data, jobs)


def _run_ray(data, jobs, size, workers, gpus_per_task, on_done):
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray backend needs Ray, which is not installed: pip install 'unlearn-audit[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, log_to_driver=False)
    if gpus_per_task and data.accel.device.type != "cuda":
        raise ConfigError("gpus per task was given but the device is not CUDA; use --device cuda or set it to 0")
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    parts = chunks(jobs, min(size, math.ceil(len(jobs) / workers)))
    task = ray.remote(num_cpus=1, num_gpus=gpus_per_task)(_ray_chunk)
    data_ref = ray.put(data)
    pending = [task.remote(data_ref, part) for part in parts]
    results = []
    try:
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            done = ray.get(finished[0])
            on_done(done)
            results += done
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return results
