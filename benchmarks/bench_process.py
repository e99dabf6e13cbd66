"""Whole ``python -m regsearch`` commands as a user runs them, timed side by side.

Every command runs in a fresh Python process, in a fresh temporary folder with fresh stores
(``paths.root=<tmp>/sweeps``, the working directory a temporary folder too), so start-up, the
sweep, the final phase, MLflow, the outputs and the report are all in the wall time. Scenarios
(``--scenario``, a comma list; default all), each printed as one Markdown table of the median
wall time over ``--rounds``, its ratio to the default command's and the best value each mode
found (the run folders' ``summary.json``):

- ``reference``: ``+sweep=dropout search.n_trials=64 train.max_epochs=2000`` with the defaults
  against the same with ``engine=reference`` (issue target: the default ≥ 12× faster);
- ``multirun``: the small sweep ``+sweep=dropout search.n_trials=20 train.max_epochs=1000`` over
  dropout + weight decay with the defaults (MLflow, final phase, report) against one process
  per trial through a Hydra launcher: ``-m hydra/launcher=submitit_local`` with 20 jobs, each one
  reference-engine trial joining one shared study on a sqlite file (job k runs with
  ``search.n_trials=k``, the study's total, and ``search.resume=true``; the launcher gets one
  job at a time, ``hydra.sweeper.max_batch_size=1``, so TPE sees every earlier trial). Needs
  ``pip install 'regsearch[bench]'`` (hydra-submitit-launcher); target: regsearch ≥ 3× faster;
- ``compare``: ``+sweep=compare`` (moons) on this tree against an export of an older commit
  (``--before``, default 21eee3a, run from its own folder with its own conf/), with each tree's
  verdict and per family the best tuned and the mean final-phase validation loss (target: ≥ 2×
  faster than before);
- ``sizes``: digits (64-128-128-10, 5 folds) and an MNIST-size model (784-256-256-10 on a
  synthetic 10,000-row IDX set the benchmark writes), default against ``engine=reference``.

Modes alternate within a scenario (ABBA over rounds), so load drift on the shared machine hits
them alike. ``--quick`` shrinks every scenario (about 2.5 minutes in all here) to check the script.

    .venv/bin/python benchmarks/bench_process.py                      # all scenarios, 1 round
    .venv/bin/python benchmarks/bench_process.py --scenario compare --rounds 3
    .venv/bin/python benchmarks/bench_process.py --quick
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shlex
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = ("reference", "multirun", "compare", "sizes")
WEIGHT_DECAY = "+sweep.params.weight_decay={low: 1e-5, high: 0.1, log: true}"
NO_LAUNCHER = (
    "multirun: skipped, hydra-submitit-launcher is not installed "
    "(pip install 'regsearch[bench]' or pip install hydra-submitit-launcher==1.2.0)"
)


@dataclass(frozen=True)
class Mode:
    """One command of a scenario: its row label and the arguments after ``python -m regsearch``."""

    name: str
    args: tuple[str, ...]
    group: str = ""  # ratios are taken against the first mode of the same group
    tree: Path = REPO  # the source tree whose regsearch (and conf/) runs


@dataclass
class Outcome:
    """What one run of a mode gave: wall seconds, best value, and what a scenario reads."""

    wall: float
    best: float
    verdict: str = ""
    families: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- running


def run_mode(mode: Mode, workdir: Path) -> Outcome:
    """Run ``mode`` once in a fresh process with fresh stores under ``workdir``."""
    root = workdir / "sweeps"
    root.mkdir()
    cmd = [sys.executable, "-m", "regsearch", *mode.args, f"paths.root={root}", "progress=false"]
    # The other tree runs from its own folder (its conf/, its package first on the path).
    cwd = mode.tree if mode.tree != REPO else workdir
    env = {**os.environ, "PYTHONPATH": str(mode.tree), "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise SystemExit(f"{mode.name} failed (exit {done.returncode}):\n{tail}")
    verdict = next((ln[9:] for ln in done.stdout.splitlines() if ln.startswith("verdict: ")), "")
    return Outcome(wall, best_value(root), verdict.split(". ")[0], family_values(root))


def best_value(root: Path) -> float:
    """The best objective value in any run folder under ``root`` (the study's best)."""
    values, maximize = [], False
    for path in root.rglob("summary.json"):
        summary = json.loads(path.read_text())
        if summary.get("best"):
            values.append(float(summary["best"]["metrics"][summary["metric"]]))
            maximize = summary.get("direction") == "maximize"
    if not values:
        return float("nan")
    return max(values) if maximize else min(values)


def family_values(root: Path) -> dict[str, str]:
    """Per family of a one-run sweep: ``best tuned val_loss / mean final-phase val_loss``."""
    # The run folder's table (MLflow's artifact store holds a copy without a summary beside it).
    tables = [p for p in root.rglob("trials.csv") if (p.parent / "summary.json").exists()]
    if len(tables) != 1:
        return {}
    per_trial: dict[tuple[str, str], list[float]] = defaultdict(list)
    final: dict[str, list[float]] = defaultdict(list)
    with tables[0].open() as handle:
        for row in csv.DictReader(handle):
            if row["state"] != "complete" or not row.get("val_loss"):
                continue
            if row["phase"] == "final":
                final[row["family"]].append(float(row["val_loss"]))
            else:
                per_trial[row["family"], row["trial"]].append(float(row["val_loss"]))
    tuned: dict[str, float] = {}
    for (family, _), losses in per_trial.items():
        tuned[family] = min(tuned.get(family, float("inf")), statistics.fmean(losses))
    return {
        family: f"{tuned[family]:.4f} / "
        + (f"{statistics.fmean(final[family]):.4f}" if final[family] else "-")
        for family in tuned
    }


def measure(scenario: str, modes: list[Mode], rounds: int) -> dict[str, list[Outcome]]:
    """Every mode ``rounds`` times, alternating (ABBA), each in a fresh temporary folder."""
    out: dict[str, list[Outcome]] = {m.name: [] for m in modes}
    for i in range(rounds):
        for mode in modes if i % 2 == 0 else modes[::-1]:
            shown = shlex.join(mode.args)
            print(
                f"[{scenario}] round {i + 1}/{rounds} {mode.name}: python -m regsearch {shown}",
                file=sys.stderr,
                flush=True,
            )
            with tempfile.TemporaryDirectory(prefix="bench-process-") as tmp:
                outcome = run_mode(mode, Path(tmp))
            out[mode.name].append(outcome)
            print(f"  -> {outcome.wall:.1f} s, best {outcome.best:.4f}", file=sys.stderr)
    return out


# --------------------------------------------------------------------------- scenarios


def reference_modes(quick: bool) -> list[Mode]:
    """The default sweep against the same with the reference engine."""
    trials, epochs = (8, 200) if quick else (64, 2000)
    base = ("+sweep=dropout", f"search.n_trials={trials}", f"train.max_epochs={epochs}")
    return [Mode("default", base), Mode("engine=reference", (*base, "engine=reference"))]


def multirun_modes(quick: bool, at_once: int) -> list[Mode]:
    """One regsearch process against one process per trial through submitit_local."""
    trials, epochs = (3, 100) if quick else (20, 1000)
    space = ("+sweep=dropout", f"train.max_epochs={epochs}", WEIGHT_DECAY)
    jobs = (
        "-m",
        "hydra/launcher=submitit_local",
        f"hydra.sweeper.max_batch_size={at_once}",  # jobs handed to the launcher at once
        *space,
        f"search.n_trials=range(1,{trials + 1})",  # job k: the shared study's k-th trial
        "engine=reference",
        "tracking=none",
        "report=false",
        "sweep.final_seeds=0",
        "search.study_name=shared",
        "search.resume=true",
    )
    return [
        Mode("regsearch, one process", (*space, f"search.n_trials={trials}")),
        Mode(f"submitit_local, {trials} jobs", jobs),
    ]


def compare_modes(quick: bool, before: Path, label: str) -> list[Mode]:
    """+sweep=compare on this tree against the same on an older tree."""
    args = ("+sweep=compare",)
    if quick:
        args = (*args, "train.max_epochs=100", "sweep.final_seeds=2")
    return [Mode("this tree", args), Mode(label, args, tree=before)]


def sizes_modes(quick: bool, mnist_dir: Path) -> list[Mode]:
    """Digits and an MNIST-size model, each default against engine=reference."""
    digits = ("+sweep=dropout", "task=digits")
    mnist = ("+sweep=dropout", "task=mnist", f"task.data_dir={mnist_dir}")
    # (trials, epochs): the reference runs take about a minute each on this 2-core CPU
    budgets = {"digits": (16, 15), "mnist": (8, 5)}
    if quick:
        budgets = {"digits": (2, 2), "mnist": (2, 1)}
    modes = []
    for task, base in (("digits", digits), ("mnist", mnist)):
        trials, epochs = budgets[task]
        args = (*base, f"search.n_trials={trials}", f"train.max_epochs={epochs}")
        modes.append(Mode(f"{task}, default", args, group=task))
        modes.append(Mode(f"{task}, engine=reference", (*args, "engine=reference"), group=task))
    return modes


def write_mnist_like(folder: Path, n_train: int = 10_000, n_test: int = 2_000) -> Path:
    """The four MNIST IDX files (plain): 28x28 images, mostly dark like MNIST's, each a noisy
    copy of one of 10 class masks (a pixel of the mask stays lit with probability 0.7, any
    other lights up with probability 0.05), so a model has something to learn."""
    rng = np.random.default_rng(0)
    masks = rng.random((10, 784)) < 0.2
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        lit = np.where(masks[labels], rng.random((n, 784)) < 0.7, rng.random((n, 784)) < 0.05)
        pixels = lit * rng.integers(128, 256, (n, 784))
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", pixels.reshape(n, 28, 28))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return folder


def _write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: magic 0x0800 + ndim, big-endian sizes, then the uint8 values."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def export_commit(commit: str, folder: Path) -> Path:
    """``git archive commit`` unpacked into ``folder`` and byte-compiled (git state is left
    untouched)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    # Bytecode as an installed package (or this checkout) has it: not compiled on every run.
    compile_all = [sys.executable, "-m", "compileall", "-q", str(folder / "regsearch")]
    subprocess.run(compile_all, check=True, stdout=subprocess.DEVNULL)
    return folder


# --------------------------------------------------------------------------- tables


def print_table(
    title: str, modes: list[Mode], results: dict[str, list[Outcome]], detail: bool = False
) -> None:
    """One Markdown table: median wall, the runs, ratio to the group's first mode, best value;
    with ``detail`` also the verdict and per family the tuned and final validation loss."""
    families = sorted({f for runs in results.values() for r in runs for f in r.families})
    head = ["mode", "wall s (median)", "runs", "wall / default's", "best val_loss"]
    if detail:
        head += ["verdict", *(f"{f}: tuned / final" for f in families)]
    print(f"\n### {title}\n\n| {' | '.join(head)} |\n|{'---|' * len(head)}")
    firsts: dict[str, float] = {}
    for mode in modes:
        runs = results[mode.name]
        wall = statistics.median(r.wall for r in runs)
        base = firsts.setdefault(mode.group, wall)
        cells = [
            mode.name,
            f"{wall:.1f}",
            ", ".join(f"{r.wall:.1f}" for r in runs),
            f"{wall / base:.2f}×",
            f"{statistics.median(r.best for r in runs):.4f}",
        ]
        if detail:
            cells += [runs[-1].verdict, *(runs[-1].families.get(f, "-") for f in families)]
        print(f"| {' | '.join(cells)} |")
    print()
    for mode in modes:
        print(f"- {mode.name}: `python -m regsearch {shlex.join(mode.args)}`")
    print(f"- load average (1, 5, 15 min) after: {_load()}", flush=True)


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


# --------------------------------------------------------------------------- main


def scenario_modes(name: str, args: argparse.Namespace, scratch: Path) -> list[Mode] | None:
    """The modes of scenario ``name`` (None: skipped, with a line saying why)."""
    if name == "reference":
        return reference_modes(args.quick)
    if name == "multirun":
        if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
            print(NO_LAUNCHER)
            return None
        return multirun_modes(args.quick, args.jobs_at_once)
    if name == "compare":
        before = Path(args.before_tree) if args.before_tree else None
        if before is None:
            before = export_commit(args.before, scratch / f"tree-{args.before}")
        return compare_modes(args.quick, before.resolve(), f"before ({args.before})")
    return sizes_modes(args.quick, write_mnist_like(scratch / "mnist"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", default=",".join(SCENARIOS), help="comma list")
    parser.add_argument("--rounds", type=int, default=1, help="runs of every mode (median)")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: check the script")
    parser.add_argument("--before", default="21eee3a", help="compare: the older commit")
    parser.add_argument("--before-tree", default="", help="compare: an existing export instead")
    parser.add_argument("--jobs-at-once", type=int, default=1, help="multirun: launcher batch")
    args = parser.parse_args()
    names = [s.strip() for s in args.scenario.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario {unknown}; choose from {', '.join(SCENARIOS)}")
    print(f"load average (1, 5, 15 min) at start: {_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-process-scratch-") as tmp:
        for name in names:
            modes = scenario_modes(name, args, Path(tmp))
            if modes:
                results = measure(name, modes, args.rounds)
                title = name + (" (--quick)" if args.quick else "")
                print_table(title, modes, results, detail=name == "compare")


if __name__ == "__main__":
    main()
