"""Whole-process wall time of tiny sweeps: what a user waits for beyond the training itself.

Each scenario runs ``python -m regsearch ...`` in a fresh process, ``--runs`` times, and the
median wall and CPU seconds (the sweep and its recorder process together) are printed as a
Markdown table. Give ``--tree`` several times to compare source trees side by side, for example
the last commit (``git archive HEAD | tar -x -C /tmp/base``) against the working tree; runs of
the trees alternate, so a load change on a shared machine hits them alike.

Scenarios:

- ``bare``: ``+sweep=dropout search.n_trials=1 train.max_epochs=1 tracking=none report=false``,
  the fixed costs alone (imports, config, data, stores, recorder, outputs, the final phase's
  one-epoch retraining);
- ``default``: the same sweep with MLflow tracking and the report on (their defaults).

Stores persist across a tree's runs (``--stores reused``, as in a user's ``sweeps/`` folder;
one warm-up run per tree creates them and is not counted) or are new each run (``fresh``).

    .venv/bin/python benchmarks/bench_startup.py --runs 3
    .venv/bin/python benchmarks/bench_startup.py --tree before=/tmp/base --tree after=.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ["+sweep=dropout", "search.n_trials=1", "train.max_epochs=1", "progress=false"]
SCENARIOS = {
    "bare": [*TINY, "tracking=none", "report=false"],
    "default": TINY,
}


@dataclass
class Timing:
    """The runs of one (tree, scenario)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def run_once(tree: Path, args: list[str], workdir: Path) -> tuple[float, float]:
    """One sweep in a fresh process with ``tree`` first on the path: (wall s, CPU s)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "regsearch", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(
    trees: dict[str, Path], scenarios: list[str], runs: int, reuse: bool
) -> dict[tuple[str, str], Timing]:
    """Median-ready timings per (tree, scenario); the trees' runs alternate."""
    out = {(t, s): Timing() for t in trees for s in scenarios}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        dirs = {(t, s): Path(tmp) / f"{t}-{s}" for t in trees for s in scenarios}
        for (name, scenario), folder in dirs.items():
            folder.mkdir()
            run_once(trees[name], SCENARIOS[scenario], folder)  # warm-up: .pyc files, stores
        for i in range(runs):
            for scenario in scenarios:
                for name, tree in trees.items():
                    folder = dirs[name, scenario]
                    if not reuse:
                        folder = Path(tmp) / f"{name}-{scenario}-{i}"
                        folder.mkdir()
                    wall, cpu = run_once(tree, SCENARIOS[scenario], folder)
                    out[name, scenario].wall.append(wall)
                    out[name, scenario].cpu.append(cpu)
                    print(
                        f"  {name:>8} {scenario:<8} run {i + 1}: {wall:.2f} s wall, "
                        f"{cpu:.2f} s CPU",
                        file=sys.stderr,
                    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per tree and scenario")
    parser.add_argument(
        "--tree", action="append", default=[], help="NAME=PATH of a source tree (repeatable)"
    )
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), default=[])
    parser.add_argument("--stores", choices=["reused", "fresh"], default="reused")
    args = parser.parse_args()
    trees = dict(item.split("=", 1) for item in args.tree) or {"this": str(ROOT)}
    paths = {name: Path(path).resolve() for name, path in trees.items()}
    scenarios = args.scenario or list(SCENARIOS)
    timings = measure(paths, scenarios, args.runs, reuse=args.stores == "reused")
    print(f"| scenario | tree | median wall s | median CPU s | runs ({args.stores} stores) |")
    print("|---|---|---|---|---|")
    for (name, scenario), t in timings.items():
        runs = ", ".join(f"{w:.2f}" for w in t.wall)
        print(
            f"| {scenario} | {name} | {statistics.median(t.wall):.2f} | "
            f"{statistics.median(t.cpu):.2f} | {runs} |"
        )


if __name__ == "__main__":
    main()
