"""docs/servers.md, step by step, on 127.0.0.1: its commands as written, on real servers.

The page's ```bash blocks are read from the file; each block's first line (``# <step>``)
names the step. Host names, ports and paths are replaced (``dbhost`` by the test cluster,
``mlflow-host`` by localhost and port 5000 by a free one, ``/srv/mlflow/artifacts`` by a tmp
folder), and the workers get a tiny budget; everything else runs as the page says: the role
and databases made
by the page's ``createuser``/``createdb``, the page's ``mlflow server`` (PostgreSQL backend,
proxied artifacts), two workers on one study through the joblib launcher, optuna-dashboard.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
import pytest

from regsearch.search.storage import get_storage
from regsearch.search.working import WORKER_ATTR
from tests.servers import free_port, wait_for_http

DOC = Path(__file__).resolve().parents[1] / "docs" / "servers.md"

#: The steps the page documents, by the first line of their block; the test runs each but the
#: cluster's, which needs SLURM.
STEPS = {
    "database host",
    "every worker",
    "MLflow host",
    "two workers on one study",
    "SLURM cluster",
    "dashboard",
}

#: What each package the page installs provides (checked importable, not installed here).
PACKAGES = {
    "regsearch[postgres]": "psycopg",
    "hydra-joblib-launcher": "hydra_plugins.hydra_joblib_launcher",
    "hydra-submitit-launcher": "hydra_plugins.hydra_submitit_launcher",
    "optuna-dashboard": "optuna_dashboard",
}

#: The workers' budget here: a few trials of a short training, two fresh seeds at the end.
SMALL = [
    "train.max_epochs=300",
    "train.eval_every=50",
    "search.population=2",
    "search.cv=0",
    "sweep.final_seeds=2",
    "report=false",
    "progress=false",
]
N_TRIALS = 8


def doc_steps() -> dict[str, list[list[str]]]:
    """The page's bash blocks by step: each command as its argv (continuations joined)."""
    steps = {}
    for block in re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S):
        first, _, body = block.partition("\n")
        assert first.startswith("# "), f"a block without its step line: {block[:60]!r}"
        lines = body.replace("\\\n", " ").splitlines()
        steps[first[2:].strip()] = [shlex.split(line) for line in lines if line.strip()]
    return steps


def _installs(commands: list[list[str]]) -> list[str]:
    return [a for c in commands if c[:2] == ["pip", "install"] for a in c[2:]]


def _runs(commands: list[list[str]]) -> list[list[str]]:
    return [c for c in commands if c[:2] != ["pip", "install"]]


def test_every_step_of_the_page_is_tested_and_names_real_packages() -> None:
    steps = doc_steps()
    assert set(steps) == STEPS
    for name in _installs([c for cs in steps.values() for c in cs]):
        assert name in PACKAGES, f"the page installs {name!r}: add what it provides to PACKAGES"
    for name, module in PACKAGES.items():
        if name in ("regsearch[postgres]", "hydra-joblib-launcher"):  # the dev extra has them
            assert importlib.util.find_spec(module) is not None, name
    # Workers, server and dashboard name the same database host, server and study.
    text = DOC.read_text()
    assert "postgresql://regsearch@dbhost/regsearch" in text
    assert "tracking.uri=http://mlflow-host:5000" in text


def _pg_tool(name: str) -> str:
    """A PostgreSQL client program: the server's own (Debian keeps them off PATH), else PATH's."""
    from tests.servers import _pg_bin

    bin_dir = _pg_bin()
    if bin_dir is not None and (bin_dir / name).exists():
        return str(bin_dir / name)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not found (apt-get install postgresql-client)")
    return found


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a server this test started, with its worker processes (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@dataclass
class Deployment:
    """What the page's steps set up and left: hosts, folders, the workers' output."""

    db_host: str  # 127.0.0.1:<port> of the PostgreSQL cluster, for ``dbhost``
    mlflow_uri: str  # http://localhost:<port>, for ``http://mlflow-host:5000``
    mlflow_port: int
    artifacts: Path  # the server's --artifacts-destination
    workdir: Path  # where the workers ran (their paths.root is sweeps/ under it)
    workers: subprocess.CompletedProcess[str]

    @property
    def storage(self) -> str:
        return f"postgresql://regsearch@{self.db_host}/regsearch"

    def local(self, argv: list[str]) -> list[str]:
        """A command of the page with this machine's hosts, ports and paths."""
        out = []
        for arg in argv:
            arg = arg.replace("http://mlflow-host:5000", self.mlflow_uri)
            arg = arg.replace("@dbhost/", f"@{self.db_host}/")
            arg = arg.replace("/srv/mlflow/artifacts", str(self.artifacts))
            out.append(arg)
        return out


def _create_databases(server: str) -> str:
    """The page's database step as written, as the cluster's superuser; returns host:port."""
    import psycopg

    host_port = server.rsplit("@", 1)[1]
    host, port = host_port.split(":")
    plain = server.replace("postgresql+psycopg://", "postgresql://")
    deadline = time.monotonic() + 30
    while True:
        try:  # the cluster listens a moment before it accepts ("starting up")
            con = psycopg.connect(f"{plain}/postgres", autocommit=True)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    with con:  # a rerun in one session starts afresh
        for database in ("regsearch", "mlflow"):
            con.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        con.execute("DROP ROLE IF EXISTS regsearch")
    # `sudo -u postgres` is the superuser over the local socket; here over TCP as `postgres`.
    env = {**os.environ, "PGHOST": host, "PGPORT": port, "PGUSER": "postgres"}
    for argv in _runs(doc_steps()["database host"]):
        assert argv[:3] == ["sudo", "-u", "postgres"], argv
        done = subprocess.run(
            [_pg_tool(argv[3]), *argv[4:]], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    return host_port


def _start_mlflow(deployment: Deployment, log: Path) -> subprocess.Popen[bytes]:
    """The page's ``mlflow server`` command, on 127.0.0.1 and a free port."""
    (argv,) = _runs(doc_steps()["MLflow host"])
    assert argv[:2] == ["mlflow", "server"]
    argv = deployment.local(argv[2:])
    port = str(deployment.mlflow_port)
    for flag, value in (("--host", "127.0.0.1"), ("--port", port)):
        argv[argv.index(flag) + 1] = value
    allowed = argv.index("--allowed-hosts") + 1
    argv[allowed] = argv[allowed].replace(":5000", f":{port}")  # the name stays: checked below
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", *argv, "--workers", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,  # its workers are stopped with it, by the group's id
        )


@pytest.fixture(scope="module")
def deployment(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Steps 1 to 3 of the page: databases, MLflow server, two workers through joblib."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    root = tmp_path_factory.mktemp("servers-doc")
    port = free_port()
    made = Deployment(
        db_host=_create_databases(postgres_server),
        mlflow_uri=f"http://localhost:{port}",  # the page allows localhost:*
        mlflow_port=port,
        artifacts=root / "artifacts",
        workdir=root / "worker",
        workers=subprocess.CompletedProcess([], 0),
    )
    made.workdir.mkdir()
    server = _start_mlflow(made, root / "mlflow.log")
    try:
        wait_for_http(f"{made.mlflow_uri}/health", server, root / "mlflow.log", timeout=120)
        (argv,) = _runs(doc_steps()["two workers on one study"])
        assert argv[:3] == ["python", "-m", "regsearch"]
        argv = [sys.executable, *made.local(argv)[1:]]
        argv[argv.index("search.n_trials=40,40")] = f"search.n_trials={N_TRIALS},{N_TRIALS}"
        made.workers = subprocess.run(
            [*argv, *SMALL],
            cwd=made.workdir,
            capture_output=True,
            text=True,
            timeout=400,
        )
        yield made
    finally:
        _stop_group(server)


@pytest.mark.slow
def test_two_workers_share_one_study_on_postgres(deployment: Deployment) -> None:
    done = deployment.workers
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "not tracking" not in done.stdout + done.stderr, "the server took every worker's runs"
    storage = get_storage(deployment.storage)
    study = optuna.load_study(study_name="l2-wine-shared", storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # The study's total, plus at most the batch the other worker had in flight.
    assert N_TRIALS <= len(trials) <= N_TRIALS + 2
    assert len({t.user_attrs[WORKER_ATTR] for t in trials}) == 2, "both workers tuned it"
    final = optuna.load_study(study_name="l2-wine-shared.final", storage=storage)
    assert len({t.user_attrs[WORKER_ATTR] for t in final.trials}) == 1, "final phase once"
    assert (done.stdout + done.stderr).count("skipped here") == 1, "the other one says so"

    # The page's "What the studies are": X, X.final and X.final.claim (no trials, a holder).
    names = {s.study_name for s in storage.get_all_studies()}
    assert names == {"l2-wine-shared", "l2-wine-shared.final", "l2-wine-shared.final.claim"}
    claim = optuna.load_study(study_name="l2-wine-shared.final.claim", storage=storage)
    assert claim.trials == [] and set(claim.user_attrs) == {"holder"}


@pytest.mark.slow
def test_the_multirun_summary_has_one_row_per_worker(deployment: Deployment) -> None:
    (folder,) = (deployment.workdir / "sweeps" / "multirun").iterdir()
    frame = pd.read_csv(folder / "summary.csv")
    assert frame["status"].tolist() == ["completed", "completed"]
    run_dirs = sorted(Path(d) for d in frame["run_dir"])
    assert run_dirs == sorted(
        p.resolve() for p in (deployment.workdir / "sweeps").glob("l2-wine/*")
    )
    # The worker that ran the final phase has the verdict.
    assert frame["tier"].notna().sum() >= 1
    assert "multirun done: 2 jobs (2 completed)" in deployment.workers.stdout


@pytest.mark.slow
def test_runs_and_artifacts_land_on_the_mlflow_server(deployment: Deployment) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(deployment.mlflow_uri)
    experiment = client.get_experiment_by_name("wine")
    assert experiment is not None
    # Proxied: the server's destination, not a worker's folder.
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    assert not (deployment.workdir / "sweeps" / "mlartifacts").exists()
    parents = client.search_runs(
        [experiment.experiment_id], filter_string="tags.mlflow.parentRunId IS NULL"
    )
    assert len(parents) == 2, "one parent run per worker"
    for run in parents:
        # The worker's trials.csv, uploaded through the server into its destination folder.
        stored = deployment.artifacts / experiment.experiment_id / run.info.run_id / "artifacts"
        # The tag names the folder as another machine can find it: absolute, with the host.
        path, _, host = run.data.tags["regsearch.run_dir"].rpartition(" on ")
        run_dir = Path(path)
        assert host == socket.gethostname() and run_dir.is_absolute()
        assert run_dir.parent == (deployment.workdir / "sweeps" / "l2-wine").resolve()
        assert (stored / "trials.csv").read_bytes() == (run_dir / "trials.csv").read_bytes()
    # The printed link is the experiment's page on the server.
    page = f"{deployment.mlflow_uri}/#/experiments/{experiment.experiment_id}"
    assert f"browse:  {page}?workflowType=machine_learning" in deployment.workers.stdout


@pytest.mark.slow
def test_the_mlflow_server_answers_the_host_name_the_page_allows(deployment: Deployment) -> None:
    def status(host: str) -> int:
        # Not /health: MLflow answers it whatever the Host header.
        url = f"{deployment.mlflow_uri}/api/2.0/mlflow/experiments/search?max_results=1"
        request = urllib.request.Request(url, headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as err:
            return err.code

    port = deployment.mlflow_port
    assert status(f"mlflow-host:{port}") == 200  # what the workers would send
    assert status(f"localhost:{port}") == 200  # a browser on the server
    assert status(f"elsewhere.example:{port}") == 403  # refused: why the flag lists both


@pytest.mark.slow
@pytest.mark.skipif(  # before the deployment is set up for it
    importlib.util.find_spec("optuna_dashboard") is None,
    reason="optuna-dashboard not installed (pip install optuna-dashboard)",
)
def test_optuna_dashboard_lists_the_studies(deployment: Deployment, tmp_path: Path) -> None:
    commands = _runs(doc_steps()["dashboard"])
    (argv,) = [c for c in commands if "dbhost" in " ".join(c)]
    assert argv[0] == "optuna-dashboard"
    argv = deployment.local(argv[1:])
    port = free_port()
    argv[argv.index("--port") + 1] = str(port)
    log = tmp_path / "dashboard.log"
    cli = "import sys; from optuna_dashboard._cli import main; sys.exit(main())"
    with log.open("wb") as out:
        dashboard = subprocess.Popen(
            [sys.executable, "-c", cli, *argv, "--host", "127.0.0.1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/studies", dashboard, log, timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as r:
            listed = json.loads(r.read())["study_summaries"]
    finally:
        _stop_group(dashboard)
    by_name = {s["study_name"]: s for s in listed}
    assert set(by_name) >= {"l2-wine-shared", "l2-wine-shared.final"}
    assert by_name["l2-wine-shared"]["directions"] == ["minimize"]
