"""Whole sweeps of convolutional networks, population engine against the reference engine.

Each row is one ``python -m regsearch`` command run in a fresh process, the two engines side
by side in one run (alternating, so a load change on the shared machine hits both alike):

- ``cnn/mnist1d``: ``+sweep=dropout task=mnist1d model=cnn`` (3 conv blocks × 25 channels,
  batch 100), the MNIST-1D paper's CNN;
- ``custom/digits``: ``+sweep=dropout task=digits model=custom`` with the user module of
  ``benchmarks/user_cnn.py`` (conv, batch norm, two dropouts) on 8×8 images.

Members per second count the tuning members (trials × seeds) over the sweep's training time
(``summary.json`` → ``timings``); wall is the whole command, stores and final phase included.

    .venv/bin/python benchmarks/bench_convnet.py                 # both rows, 2 runs each
    .venv/bin/python benchmarks/bench_convnet.py --rows cnn/mnist1d --trials 32 --runs 1
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

HERE = Path(__file__).resolve().parent
ROWS = {
    "cnn/mnist1d": ["task=mnist1d", "model=cnn"],
    "custom/digits": ["task=digits", "model=custom", "model._target_=user_cnn.make_net"],
}
ENGINES = ("population", "reference")


def command(row: str, engine: str, trials: int, epochs: int, root: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "regsearch",
        "+sweep=dropout",
        *ROWS[row],
        f"engine={engine}",
        f"search.n_trials={trials}",
        f"search.population={trials}",
        "search.cv=0",
        "search.repeats=1",
        f"train.max_epochs={epochs}",
        f"train.eval_every={epochs}",
        "sweep.final_seeds=0",
        "tracking=none",
        "report=false",
        "progress=false",
        f"paths.root={root}",
    ]


def run_once(argv: list[str], root: Path) -> tuple[float, float, int]:
    """(wall s, training s, tuning members) of one command in a fresh process."""
    # This tree's regsearch (a copy of the tree can be measured while the checkout changes).
    env = {**os.environ, "PYTHONPATH": f"{HERE.parent}{os.pathsep}{HERE}"}
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=root)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    (summary_path,) = root.glob("*/*/summary.json")
    summary = json.loads(summary_path.read_text())
    train_s = float(summary["timings"]["train"])
    members = int(summary["n_trials"])
    summary_path.parent.rename(root / f"done-{time.monotonic_ns()}")
    return wall, train_s, members


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows")
    parser.add_argument("--trials", type=int, default=16, help="tuning trials, all at once")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per member")
    parser.add_argument("--runs", type=int, default=2, help="runs per (row, engine)")
    args = parser.parse_args()
    print("| row | engine | members | wall s | train s | members/s | speedup |")
    print("|---|---|---|---|---|---|---|")
    for row in args.rows.split(","):
        timings: dict[str, list[tuple[float, float, int]]] = {e: [] for e in ENGINES}
        with tempfile.TemporaryDirectory(prefix="bench-convnet-") as tmp:
            for run in range(args.runs):
                for engine in ENGINES if run % 2 == 0 else ENGINES[::-1]:
                    root = Path(tmp) / engine
                    root.mkdir(exist_ok=True)
                    argv = command(row, engine, args.trials, args.epochs, root)
                    timings[engine].append(run_once(argv, root))
        rate = {e: statistics.median(m / t for _, t, m in runs) for e, runs in timings.items()}
        for engine, runs in timings.items():
            wall = statistics.median(w for w, _, _ in runs)
            train = statistics.median(t for _, t, _ in runs)
            members = runs[0][2]
            speedup = rate[engine] / rate["reference"]
            print(
                f"| {row} | {engine} | {members} | {wall:.1f} | {train:.1f} | "
                f"{rate[engine]:.2f} | {speedup:.2f}× |"
            )


if __name__ == "__main__":
    main()
