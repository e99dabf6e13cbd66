"""Stopped members give their compute back: compaction and refill, engine alone and whole sweep.

    python benchmarks/bench_compaction.py engine                 # moons, K = 16 and 64
    python benchmarks/bench_compaction.py engine --members 64 --epochs 3000 --rounds 3
    python benchmarks/bench_compaction.py sweep --rounds 2       # the whole CLI command
    python benchmarks/bench_compaction.py sweep --baseline /path/to/older/checkout

``engine`` trains K moons members (2-20-3-1, full batch, dropout + L2 + weight decay each with
its own values) that ``on_epoch`` prunes like one Hyperband bracket (η = 3): at epochs 10, 30,
90, ... only the best third goes on, one member trains to the end. Modes, alternated over
``--rounds`` so machine noise hits all alike (median wall time):

- ``masked``: stopped members keep their slot and are computed, masked, until the stack ends
  (the engine before compaction; here the compaction threshold is set to 0);
- ``compacted``: the default engine, whose stacks shrink as members stop;
- ``batches`` / ``refill``: 4·K members, K in flight: four calls of K members one after the
  other (what the study loop does today) against one call that refills free slots.

``sweep`` runs ``python -m regsearch +sweep=dropout search.n_trials=32 search.population=16
train.max_epochs=3000 tracking=none report=false`` with ``search.pruner=hyperband`` and
``search.pruner=none`` (each in a fresh process, alternating), and prints wall time, the
seconds spent in the engines, trials pruned and the best validation loss found. With
``--baseline DIR`` the same commands also run on the regsearch found in DIR (e.g. an export of
an older commit), side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SWEEP = [
    "+sweep=dropout",
    "search.n_trials=32",
    "search.population=16",
    "train.max_epochs=3000",
    "tracking=none",
    "report=false",
    "progress=false",
]


# --------------------------------------------------------------------------- engine alone


def prune_epochs(k: int, first: int = 10, eta: int = 3) -> list[int | None]:
    """Epoch at which each of k members is pruned (None: trains to the end): successive
    halving with ratio eta from ``first``, keeping the lowest-numbered members.

    >>> prune_epochs(16)
    [None, 90, 30, 30, 30, 30, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10]
    """
    out: list[int | None] = [None] * k
    keep, epoch = k, first
    while keep > 1:
        nxt = max(1, -(-keep // eta))
        for i in range(nxt, keep):
            out[i] = epoch
        keep, epoch = nxt, epoch * eta
    return out


def _engine_run(mode: str, k: int, epochs: int) -> tuple[float, int]:
    """(wall seconds, members trained) of one engine mode."""
    from bench_engine import sample_members  # the same members as the engine benchmark

    from regsearch.config import MoonsTask
    from regsearch.engine import population
    from regsearch.engine.members import Schedule
    from regsearch.models import ModelSpec
    from regsearch.tasks import load_task

    task = load_task(MoonsTask(name="moons"))
    spec = ModelSpec(2, 1, hidden=(20, 3), init="normal")
    schedule = Schedule(max_epochs=epochs, eval_every=10)
    population._COMPACT_BELOW = 0.0 if mode == "masked" else 0.75
    calls = 4 if mode in ("batches", "refill") else 1
    members = [sample_members(k, offset=c * k) for c in range(calls)]
    stops = {m.trial: e for group in members for m, e in zip(group, prune_epochs(k), strict=True)}
    trials = [m.trial for group in members for m in group]

    def on_epoch(index: int, report) -> bool:  # type: ignore[no-untyped-def]
        stop = stops[trials[index]]
        return stop is not None and report.epoch >= stop

    start = time.perf_counter()
    if mode == "refill":
        queue = [m for group in members[1:] for m in group]

        def refill(free: int) -> list:
            taken = queue[:free]
            del queue[:free]
            return taken

        results = population.train(
            task, spec, members[0], schedule=schedule, on_epoch=on_epoch, refill=refill
        )
    else:
        results = []
        for group in members:  # one call after the other, as the study's batches
            offset = len(results)
            results += population.train(
                task,
                spec,
                group,
                schedule=schedule,
                on_epoch=lambda i, r, offset=offset: on_epoch(offset + i, r),
            )
    wall = time.perf_counter() - start
    assert [r.member.trial for r in results] == trials
    return wall, len(results)


def engine(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    modes = args.modes.split(",")
    for k in (int(v) for v in args.members.split(",")):
        walls: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(args.rounds):
            for mode in modes:
                walls[mode].append(_engine_run(mode, k, args.epochs)[0])
        median = {m: statistics.median(w) for m, w in walls.items()}
        pruned = sum(e is not None for e in prune_epochs(k))
        print(f"moons, K={k}, {args.epochs} epochs, {pruned} of {k} pruned per stack")
        print("  " + "  ".join(f"{m} {w:.2f} s" for m, w in median.items()))
        for slow, fast in (("masked", "compacted"), ("batches", "refill")):
            if slow in median and fast in median:
                print(f"  {fast} vs {slow}: {median[slow] / median[fast]:.2f}× faster")


# --------------------------------------------------------------------------- whole command


def _sweep_run(pruner: str, tree: Path, root: Path, extra: list[str]) -> dict[str, float]:
    cmd = [sys.executable, "-m", "regsearch", *SWEEP, f"search.pruner={pruner}"]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    subprocess.run(
        [*cmd, f"paths.root={root}", *extra], cwd=tree, env=env, check=True, capture_output=True
    )
    wall = time.perf_counter() - start
    (path,) = root.glob("dropout-*/*/summary.json")
    summary = json.loads(path.read_text())
    best = summary.get("best") or {}
    return {
        "wall": wall,
        "train": float(summary.get("timings", {}).get("train", float("nan"))),  # tuning
        "final": float(summary.get("timings", {}).get("final", float("nan"))),
        "pruned": float(summary.get("n_pruned", float("nan"))),
        "best": float(best.get("metrics", {}).get("val_loss", float("nan"))),
    }


def sweep(args: argparse.Namespace) -> None:
    trees = {"": REPO} | ({"before ": Path(args.baseline).resolve()} if args.baseline else {})
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for label, tree in trees.items():
            for pruner in ("hyperband", "none"):
                with tempfile.TemporaryDirectory() as tmp:
                    row = _sweep_run(pruner, tree, Path(tmp), args.extra)
                runs.setdefault(f"{label}{pruner}", []).append(row)
    print(" ".join(["python -m regsearch", *SWEEP]), f"(median of {args.rounds})")
    print(
        f"{'mode':>18} {'wall s':>8} {'tune s':>8} {'final s':>8} {'pruned':>7} "
        f"{'best val_loss':>14}"
    )
    median = {
        mode: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for mode, rows in runs.items()
    }
    for mode, row in median.items():
        print(
            f"{mode:>18} {row['wall']:8.1f} {row['train']:8.1f} {row['final']:8.1f} "
            f"{row['pruned']:7.0f} "
            f"{row['best']:14.4f}"
        )
    for label in trees:
        ratio = median[f"{label}hyperband"]["wall"] / median[f"{label}none"]["wall"]
        tune = median[f"{label}hyperband"]["train"] / median[f"{label}none"]["train"]
        print(f"{label or 'this tree '}: hyperband / none wall = {ratio:.2f}, tuning = {tune:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("engine", help="the engine alone, pruned-heavy stacks")
    one.add_argument("--members", default="16,64")
    one.add_argument("--epochs", type=int, default=3000)
    one.add_argument("--rounds", type=int, default=3)
    one.add_argument("--threads", type=int, default=1)
    one.add_argument("--modes", default="masked,compacted,batches,refill")
    whole = sub.add_parser("sweep", help="the whole command, hyperband vs no pruner")
    whole.add_argument("--rounds", type=int, default=2)
    whole.add_argument("--baseline", help="a checkout whose regsearch runs the same commands")
    whole.add_argument("extra", nargs="*", help="more overrides, e.g. train.max_epochs=1000")
    args = parser.parse_args()
    engine(args) if args.what == "engine" else sweep(args)


if __name__ == "__main__":
    main()
