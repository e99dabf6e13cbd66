"""One sweep, three ways, side by side: population engine, reference engine, one process per trial.

Workload (issue 4): the NNDL make_moons MLP (2-20-3-1, full batch), a space of dropout + L2 +
weight decay, N trials × S full-batch steps. Every mode uses the same Optuna sampler seed and
the product's own code path (``run_sweep``) except the process-per-trial mode, which mimics a
Hydra multirun launcher: the parent asks/tells Optuna and each trial runs the reference trainer
in a fresh Python process (imports included).

    python benchmarks/bench_sweep.py                       # 64 trials × 5,000 steps, all modes
    python benchmarks/bench_sweep.py --population 16,32,64  # one population row per batch size
    python benchmarks/bench_sweep.py --trials 16 --steps 1000 --modes population,reference
    python benchmarks/bench_sweep.py --scaling 100,500,1000,2000 --steps 200 --modes population

Prints one table (trials/s, wall, speedup vs reference and vs process, best val loss, peak RSS,
bookkeeping share, share of wall outside training) and, with --scaling, time per trial against
the number of trials. Bookkeeping is what the sweep's own clock (summary.json ``timings``)
counts on its critical path: sampler, tell, pulling other workers' trials, handing batches to
the recorder, opening the stores and waiting for the recorder at the end. The product modes
skip the final re-evaluation phase (``sweep.final_seeds=0``) so every mode trains the same 64
trials.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPACE = (
    "++sweep.params={dropout: {low: 0.0, high: 0.6}, l2: {low: 1.0e-5, high: 1.0e-1, log: true},"
    " weight_decay: {low: 1.0e-5, high: 1.0e-1, log: true}}"
)


@dataclass
class Row:
    mode: str
    trials: int
    wall_s: float
    train_s: float
    best_val_loss: float
    peak_rss_mb: float
    bookkeeping_s: float  # sampler + Optuna storage + MLflow time on the sweep's critical path
    timings: dict[str, float] | None = None  # the sweep's own clock (summary.json)

    @property
    def trials_per_s(self) -> float:
        return self.trials / self.wall_s

    @property
    def bookkeeping(self) -> float:
        """Share of wall time the sweep spent in the sampler, the storage and MLflow."""
        return self.bookkeeping_s / self.wall_s

    @property
    def outside_training(self) -> float:
        """Share of wall time outside training (bookkeeping, loop, data, outputs)."""
        return max(0.0, 1.0 - self.train_s / self.wall_s)


_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from regsearch.config import MoonsTask
from regsearch.engine.members import Schedule
from regsearch.records import Hyperparams, Member
from regsearch.engine.reference import train
from regsearch.models import ModelSpec
from regsearch.tasks import load_task
import torch
torch.set_num_threads(1)
args = json.loads(sys.argv[1])
task = load_task(MoonsTask())
spec = ModelSpec(2, 1, hidden=(20, 3), init="normal", init_std=1.0)
hp = Hyperparams(lr=0.2, l2=args["l2"], weight_decay=args["weight_decay"],
                 dropout=(args["dropout"],) * 2 if args["dropout"] > 0 else ())
t1 = time.perf_counter()
(res,) = train(task, spec, [Member(args["trial"], 0, hp)],
               schedule=Schedule(max_epochs=args["steps"], eval_every=args["eval_every"]))
print(json.dumps({"val_loss": res.final.get("val_loss"), "train_s": time.perf_counter() - t1,
                  "state": res.state}))
"""


def run_product(
    mode: str, trials: int, steps: int, eval_every: int, population: int, root: Path
) -> Row:
    """The real `run_sweep` path (Optuna sqlite + MLflow sqlite), engine forced to `mode`."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from regsearch.__main__ import CONF_DIR
    from regsearch.config import validate
    from regsearch.sweep import run_sweep

    overrides = [
        "+sweep=baseline",
        "sweep.name=bench",
        SPACE,
        f"search.n_trials={trials}",
        "search.repeats=1",
        f"search.population={population if mode == 'population' else 1}",
        f"engine={mode}",
        f"train.max_epochs={steps}",
        f"train.eval_every={eval_every}",
        "sweep.final_seeds=0",  # the same 64 trainings in every mode, no re-evaluation phase
        "progress=false",
        "report=false",
        f"paths.root={root}",
    ]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
    typed = validate(cfg)
    start = time.perf_counter()
    result = run_sweep(typed, OmegaConf.to_yaml(cfg, resolve=True))
    wall = time.perf_counter() - start
    complete = result.trials[result.trials["state"] == "complete"]
    timings = result.summary["timings"]
    # On the critical path: asking (sampler), telling, pulling other workers' trials, handing
    # batches to the recorder, opening the stores, waiting for the recorder at the end.
    kinds = ("sampler", "tell", "sync", "handover", "open_stores", "recorder_wait")
    return Row(
        mode,
        trials,
        wall,
        float(timings.get("train", 0.0)),
        float(complete["val_loss"].min()),
        _peak_rss_mb(),
        sum(float(timings.get(k, 0.0)) for k in kinds),
        timings,
    )


def run_processes(trials: int, steps: int, eval_every: int, root: Path) -> Row:
    """Parent asks/tells a seeded TPE study; each trial is a fresh Python process."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=f"sqlite:///{root}/optuna-process.db",
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5, multivariate=True),
    )
    start, train_s, best = time.perf_counter(), 0.0, float("inf")
    bookkeeping = time.perf_counter() - start
    for _ in range(trials):
        t0 = time.perf_counter()
        trial = study.ask()
        args = {
            "trial": trial.number,
            "steps": steps,
            "eval_every": eval_every,
            "dropout": trial.suggest_float("dropout", 0.0, 0.6),
            "l2": trial.suggest_float("l2", 1e-5, 1e-1, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
        }
        bookkeeping += time.perf_counter() - t0
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(args)],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        record = json.loads(out.stdout.strip().splitlines()[-1])
        train_s += record["train_s"]
        t0 = time.perf_counter()
        if record["state"] == "complete":
            study.tell(trial, record["val_loss"])
            best = min(best, record["val_loss"])
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        bookkeeping += time.perf_counter() - t0
    wall = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    peak = max(_peak_rss_mb(), children)
    return Row("process", trials, wall, train_s, best, peak, bookkeeping)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fresh(mode: str, trials: int, steps: int, eval_every: int, population: int) -> Row:
    """Each product mode in its own process, so peak memory and warm-up are its own."""
    code = (
        "import json, sys; sys.path.insert(0, %r); from bench_sweep import run_product, Row;"
        "import dataclasses, pathlib;"
        "r = run_product(%r, %d, %d, %d, %d, pathlib.Path(%r));"
        "print(json.dumps(dataclasses.asdict(r)))"
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = code % (str(Path(__file__).parent), mode, trials, steps, eval_every, population, tmp)
        out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, cwd=REPO)
        if out.returncode:
            raise RuntimeError(f"{mode} failed:\n{out.stderr[-3000:]}")
        return Row(**json.loads(out.stdout.strip().splitlines()[-1]))


def print_table(rows: list[Row]) -> None:
    ref = next((r for r in rows if r.mode == "reference"), None)
    proc = next((r for r in rows if r.mode == "process"), None)
    head = f"{'mode':<11}{'trials':>7}{'wall s':>9}{'trials/s':>10}{'vs ref':>8}{'vs proc':>9}"
    head += f"{'best val':>10}{'peak MB':>9}{'bookkeep':>10}{'not train':>11}"
    print(head)
    for r in rows:
        vs_ref = f"{r.trials_per_s / ref.trials_per_s:.1f}x" if ref else "-"
        vs_proc = f"{r.trials_per_s / proc.trials_per_s:.1f}x" if proc else "-"
        print(
            f"{r.mode:<11}{r.trials:>7}{r.wall_s:>9.1f}{r.trials_per_s:>10.2f}{vs_ref:>8}"
            f"{vs_proc:>9}{r.best_val_loss:>10.4f}{r.peak_rss_mb:>9.0f}{r.bookkeeping:>10.1%}"
            f"{r.outside_training:>11.1%}"
        )
    print("\nwhere the product modes' wall time goes (seconds, the sweep's own clock):")
    for r in rows:
        if r.timings:
            parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r.timings.items()))
            print(f"  {r.mode:<10} wall {r.wall_s:.2f}: {parts}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5000, help="full-batch steps per trial")
    parser.add_argument("--eval-every", type=int, default=0, help="0 = steps // 20")
    parser.add_argument(
        "--population",
        default="32",
        help="trials per population batch; a comma list gives one population row each",
    )
    parser.add_argument("--modes", default="population,reference,process")
    parser.add_argument("--scaling", default="", help="e.g. 100,500,1000,2000 (population mode)")
    args = parser.parse_args()
    eval_every = args.eval_every or max(1, args.steps // 20)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    rows = []
    populations = [int(p) for p in args.population.split(",")]
    for mode in args.modes.split(","):
        print(f"running {mode} ...", file=sys.stderr, flush=True)
        if mode == "process":
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(run_processes(args.trials, args.steps, eval_every, Path(tmp)))
        elif mode == "population":
            for size in populations:
                row = _fresh(mode, args.trials, args.steps, eval_every, size)
                row.mode = f"pop/{size}"
                rows.append(row)
        else:
            rows.append(_fresh(mode, args.trials, args.steps, eval_every, 1))
    if rows:
        print_table(rows)
    if args.scaling:
        print("\nscaling (population engine, time per trial):")
        for n in (int(v) for v in args.scaling.split(",")):
            row = _fresh("population", n, args.steps, eval_every, populations[0])
            per_trial = row.wall_s / n * 1000
            print(
                f"  {n:>5} trials: {per_trial:8.1f} ms/trial  bookkeeping {row.bookkeeping:.0%}"
                f"  outside training {row.outside_training:.0%}"
            )


if __name__ == "__main__":
    main()
