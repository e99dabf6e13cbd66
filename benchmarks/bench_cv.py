"""What cross-validation costs: one compare sweep with the holdout split and with K folds.

Each mode runs ``python -m regsearch +sweep=compare`` in its own process (imports, data,
tuning, final phase and refits included; ``tracking=none report=false`` so only the sweep is
timed), alternating modes over ``--rounds`` so that machine noise hits both alike. Prints wall
time per mode, the ratio to the holdout run and the sweep's own training seconds.

    python benchmarks/bench_cv.py                          # moons, holdout vs 5 folds
    python benchmarks/bench_cv.py --task wine --folds 3,5 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_once(task: str, cv: str, root: Path, extra: list[str]) -> tuple[float, float]:
    """(wall seconds, seconds in the engines) of one compare sweep."""
    cmd = [
        sys.executable,
        "-m",
        "regsearch",
        "+sweep=compare",
        f"task={task}",
        f"search.cv={cv}",
        f"paths.root={root}",
        "tracking=none",
        "report=false",
        "progress=false",
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (summary,) = root.glob("compare-*/*/summary.json")
    timings = json.loads(summary.read_text()).get("timings", {})
    return wall, float(timings.get("train", float("nan")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="moons")
    parser.add_argument("--folds", default="5", help="comma-separated K values to compare")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("extra", nargs="*", help="more overrides, e.g. train.max_epochs=500")
    args = parser.parse_args()
    modes = ["0", *args.folds.split(",")]
    walls: dict[str, list[float]] = {m: [] for m in modes}
    trains: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode in modes:
            with tempfile.TemporaryDirectory() as tmp:
                wall, train = run_once(args.task, mode, Path(tmp), args.extra)
            walls[mode].append(wall)
            trains[mode].append(train)
    base = statistics.median(walls["0"])
    print(f"compare on {args.task}, {args.rounds} rounds (median wall; ratio vs holdout)")
    print(f"{'search.cv':>10} {'wall s':>8} {'ratio':>6} {'train s':>8}")
    for mode in modes:
        wall = statistics.median(walls[mode])
        label = "holdout" if mode == "0" else f"{mode} folds"
        train = statistics.median(trains[mode])
        print(f"{label:>10} {wall:8.1f} {wall / base:6.2f} {train:8.1f}")


if __name__ == "__main__":
    main()
