"""N CLI workers on one shared study: finished trials, duplicates, final-phase runs, trials/s.

Starts 1, 2 and 4 ``python -m regsearch +sweep=l2`` workers together on one study (the first
without, the others with ``search.resume=true``, as the README says) on a journal file and,
with ``--postgres URL`` (a server you run, e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432``;
a database per run is created there), on PostgreSQL. Prints one table row per run.

    python benchmarks/bench_workers.py
    python benchmarks/bench_workers.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from regsearch.search.storage import get_storage

N_TRIALS, POPULATION = 24, 4


def storage_for(kind: str, n: int, root: Path, postgres: str | None) -> str:
    if kind == "journal":
        path = root / "optuna.journal"
        path.touch()  # resume=true needs the file to exist
        return str(path)
    import psycopg

    assert postgres is not None
    db = f"bench_workers_{n}"
    with psycopg.connect(postgres.replace("+psycopg", "") + "/postgres", autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {db}")
        con.execute(f"CREATE DATABASE {db}")
    return f"{postgres}/{db}"


def run(kind: str, n: int, postgres: str | None) -> str:
    root = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-{n}-"))
    storage = storage_for(kind, n, root, postgres)
    base = [
        sys.executable, "-m", "regsearch", "+sweep=l2", f"paths.root={root}",
        "train.max_epochs=2000", "train.eval_every=10", "progress=false", "search.cv=0",
        "tracking=none", "report=false", f"search.storage={storage}", "search.study_name=shared",
        f"search.n_trials={N_TRIALS}", f"search.population={POPULATION}", "search.repeats=1",
    ]  # fmt: skip
    commands = [base] + [[*base, "search.resume=true"]] * (n - 1)
    start = time.monotonic()
    procs = [
        subprocess.Popen(c, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for c in commands
    ]
    codes = [p.wait() for p in procs]
    wall = time.monotonic() - start
    store = get_storage(storage)
    trials = optuna.load_study(study_name="shared", storage=store).get_trials(deepcopy=False)
    params = [tuple(sorted(t.params.items())) for t in trials]
    final = optuna.load_study(study_name="shared.final", storage=store).trials
    runs = len({t.user_attrs.get("worker") for t in final})
    shutil.rmtree(root, ignore_errors=True)
    dupes = len(params) - len(set(params))
    return (
        f"| {kind} | {n} | {len(trials)} | {dupes} | {runs} | {len(trials) / wall:.2f} | {codes} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="server URL without a database name")
    args = parser.parse_args()
    print(f"n_trials={N_TRIALS}, population={POPULATION}")
    print("| storage | workers | finished | duplicates | final-phase runs | trials/s | exits |")
    print("|---|---|---|---|---|---|---|")
    for kind in ("journal", *(("postgres",) if args.postgres else ())):
        for n in (1, 2, 4):
            print(run(kind, n, args.postgres), flush=True)


if __name__ == "__main__":
    main()
