"""Engine throughput alone (no Optuna, no MLflow): population vs reference, per member-step.

    python benchmarks/bench_engine.py                          # moons, CPU, K = 1..256
    python benchmarks/bench_engine.py --task digits --members 1,16,64
    python benchmarks/bench_engine.py --task mnist784 --members 1,8,32 --steps 50
    python benchmarks/bench_engine.py --device cuda --members 1,64,1024,4096,16384

Members carry dropout + L2 + decoupled weight decay (each its own values), the moons setup of
benchmarks/README.md. ``mnist784`` is random data of MNIST's shape (784 features, 10 classes,
784-256-256-10, batch 256) so it runs without the data files. Prints ms per batched step, ms per
member-step, the speedup per member over the reference engine on the same device, and peak
memory.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from regsearch.config import MoonsTask, SklearnTask
from regsearch.engine import population, reference
from regsearch.engine.members import Schedule
from regsearch.models import ModelSpec
from regsearch.records import Hyperparams, Member
from regsearch.tasks import load_task
from regsearch.tasks.bundle import TaskData, make_bundle


def _task(name: str) -> tuple[TaskData, ModelSpec, Schedule]:
    if name == "moons":
        task = load_task(MoonsTask())
        return task, ModelSpec(2, 1, hidden=(20, 3), init="normal"), Schedule()
    if name == "digits":
        task = load_task(SklearnTask(name="digits"))
        spec = ModelSpec(task.n_features, task.n_outputs, hidden=(128, 128))
        return task, spec, Schedule(optimizer="sgd", batch_size=64)
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)

    splits = {"train": split(10_000), "val": split(2_000), "test": split(2_000)}
    task = make_bundle("mnist784", "classification", splits, standardize=False)
    return (
        task,
        ModelSpec(784, 10, hidden=(256, 256), init="normal", init_std=0.01),
        Schedule(batch_size=256),
    )


def sample_members(k: int, offset: int = 0) -> list[Member]:
    """``k`` moons members with random L2, weight decay and dropout (trials offset..offset+k-1)."""
    rng = np.random.default_rng(k + offset)
    return [
        Member(
            trial=offset + i,
            seed=i % 8,
            hparams=Hyperparams(
                lr=0.2,
                l2=float(10 ** rng.uniform(-5, -2)),
                weight_decay=float(10 ** rng.uniform(-5, -2)),
                dropout=(float(rng.uniform(0.05, 0.5)),) * 2,
            ),
        )
        for i in range(k)
    ]


def _steps_per_epoch(task: TaskData, schedule: Schedule) -> int:
    n = len(task.x_train)
    if schedule.batch_size is None or schedule.batch_size >= n:
        return 1
    return -(-n // schedule.batch_size)


def measure(
    engine: str,
    task: TaskData,
    spec: ModelSpec,
    schedule: Schedule,
    k: int,
    epochs: int,
    device: str,
) -> float:
    """Seconds per batched step (K members) after one warm-up epoch."""
    train = population.train if engine == "population" else reference.train
    sched = Schedule(**{**schedule.__dict__, "max_epochs": epochs, "eval_every": epochs})
    warm = Schedule(**{**schedule.__dict__, "max_epochs": 1, "eval_every": 1})
    train(task, spec, sample_members(k), schedule=warm, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train(task, spec, sample_members(k), schedule=sched, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / (epochs * _steps_per_epoch(task, schedule))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="moons", choices=("moons", "digits", "mnist784"))
    parser.add_argument("--members", default="1,16,64,256")
    parser.add_argument("--steps", type=int, default=500, help="full-batch steps (or epochs)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task, spec, schedule = _task(args.task)
    epochs = max(1, args.steps // _steps_per_epoch(task, schedule))
    ref_k = 4 if args.device == "cpu" else 2
    ref = (
        measure("reference", task, spec, schedule, ref_k, max(1, epochs // 4), args.device) / ref_k
    )
    print(f"{args.task} on {args.device}: reference {ref * 1e3:.3f} ms per member-step")
    print(f"{'K':>7}{'ms/step':>10}{'ms/member-step':>16}{'x per member':>14}{'peak MB':>10}")
    for k in (int(v) for v in args.members.split(",")):
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        step = measure("population", task, spec, schedule, k, epochs, args.device)
        peak = (
            torch.cuda.max_memory_allocated() / 2**20
            if args.device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        gain = ref / (step / k)
        print(f"{k:>7}{step * 1e3:>10.3f}{step / k * 1e3:>16.4f}{gain:>14.1f}{peak:>10.0f}")


if __name__ == "__main__":
    main()
