"""A tiny suite end to end: two small KEEL sets, every compare family on a tiny budget, real
Optuna and MLflow stores; resumed without rerunning; its report opened in headless Chromium.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` and selenium (see
``tests/browser.py``); they skip with the reason where one is missing, unless CI requires them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import regsearch
from regsearch import suite
from regsearch.config import ConfigError
from regsearch.suite.runner import SuiteResult
from tests.browser import By, chrome, needs_browser
from tests.test_cli_errors import assert_refused, run_cli

#: Every family of compare, two trials each, 20 full-batch steps, two fresh seeds × 5 folds.
TINY_SUITE = [
    "suite.datasets=[iris,sonar]",
    "suite.n_trials=2",
    "train.max_epochs=20",
    "train.eval_every=10",
    "sweep.final_seeds=2",
]
FAMILIES = ["l1", "l2", "weight_decay", "dropout", "early_stopping", "batchnorm"]
SECTIONS = [
    "Verdict across data sets",
    "Wins, ties and losses",
    "Critical-difference diagram",
    "Effects per data set",
    "Data sets",
    "Setup",
    "MLflow",
]


@dataclass
class Ran:
    root: Path
    result: SuiteResult
    lines: list[str]

    @property
    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.result.folder / "suite.json").read_text())
        return data


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    root = tmp_path_factory.mktemp("sweeps")
    lines: list[str] = []
    result = suite.run(*TINY_SUITE, root=root, echo=lines.append)
    return Ran(root, result, lines)


def test_the_suite_folder_holds_each_run_the_records_and_the_report(ran: Ran) -> None:
    folder = ran.result.folder
    assert folder == ran.root / "suite-keel12"
    assert ran.result.ran == ["iris", "sonar"] and ran.result.skipped == []
    for name in ("iris", "sonar"):
        entry = ran.state["datasets"][name]
        assert entry["status"] == "done"
        run_dir = folder / entry["run_dir"]
        assert run_dir.parent.name == f"compare-keel-{name}"
        assert (run_dir / "report.html").is_file() and (run_dir / "trials.csv").is_file()
    records = pd.read_csv(folder / "records.csv")
    assert len(records) == 2 * 7 and set(records["dataset"]) == {"iris", "sonar"}
    stats = ran.result.stats
    assert stats is not None and stats.datasets == ("iris", "sonar")
    assert [f.name for f in stats.families] == FAMILIES
    assert all(f.wins + f.ties + f.losses == 2 for f in stats.families)
    assert (folder / "report.html").is_file()
    assert (folder / "figures" / "cd_diagram.png").is_file()


def test_progress_is_one_line_per_data_set_start_and_end(ran: Ran) -> None:
    starts = [line for line in ran.lines if line.endswith("running compare ...")]
    assert starts == [
        "[1/2] iris: 150 rows, 4 features, 3 classes: running compare ...",
        "[2/2] sonar: 208 rows, 60 features, 2 classes: running compare ...",
    ]
    ends = [line for line in ran.lines if line.startswith("[") and " s; suite " in line]
    assert len(ends) == 2 and ran.lines[-1].startswith("suite: ")


def test_a_rerun_skips_finished_data_sets(ran: Ran) -> None:
    before = {d: sorted(p.name for p in (ran.result.folder / f"compare-keel-{d}").iterdir())
              for d in ("iris", "sonar")}  # fmt: skip
    lines: list[str] = []
    again = suite.run(*TINY_SUITE, root=ran.root, echo=lines.append)
    assert again.ran == [] and again.skipped == ["iris", "sonar"]
    assert lines[:2] == [
        f"[1/2] iris: done before (compare-keel-iris/{before['iris'][0]}), not rerun",
        f"[2/2] sonar: done before (compare-keel-sonar/{before['sonar'][0]}), not rerun",
    ]
    for d, names in before.items():
        assert sorted(p.name for p in (ran.result.folder / f"compare-keel-{d}").iterdir()) == names
    pd.testing.assert_frame_equal(again.records, ran.result.records)
    assert again.mlflow_run_id == ran.result.mlflow_run_id  # the same suite run, reopened


def test_another_machine_on_the_same_storage_reads_the_finished_data_sets(
    ran: Ran, tmp_path: Path
) -> None:
    """Another ``paths.root`` (another machine) on the suite's storage learns from the storage
    that both data sets are done: it reads them into its folder, trains nothing, and ends
    with the same records."""
    import optuna

    storage = f"sqlite:///{ran.root}/optuna.db"

    def trials() -> dict[str, int]:
        return {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}

    before = trials()
    lines: list[str] = []
    other = suite.run(*TINY_SUITE, f"search.storage={storage}", "tracking=none", "report=false",
                      root=tmp_path, echo=lines.append)  # fmt: skip
    assert other.ran == ["iris", "sonar"] and trials() == before
    starts = [line for line in lines if line.endswith("...")]
    assert len(starts) == 2 and all(" done by worker " in line for line in starts)
    assert f"({ran.result.folder.resolve()}/compare-keel-iris/" in starts[0]
    state = json.loads((other.folder / "suite.json").read_text())
    assert {e["status"] for e in state["datasets"].values()} == {"done"}
    assert state["datasets"]["iris"]["trials"] == dict.fromkeys(["baseline", *FAMILIES], 2)
    pd.testing.assert_frame_equal(other.records, ran.result.records)


def test_an_unfinished_data_set_continues_its_studies_without_retraining(ran: Ran) -> None:
    """What a rerun does after an interruption, or after another machine ran the final phase."""
    import optuna

    storage = f"sqlite:///{ran.root}/optuna.db"
    study = ran.state["datasets"]["sonar"]["study"]

    def trials() -> dict[str, int]:
        found = optuna.get_all_study_summaries(storage)
        return {s.study_name: s.n_trials for s in found if s.study_name.startswith(study)}

    before = trials()
    state = ran.state
    state["datasets"]["sonar"]["status"] = "incomplete"
    (ran.result.folder / "suite.json").write_text(json.dumps(state))
    again = suite.run(*TINY_SUITE, root=ran.root, echo=lambda line: None)
    assert again.ran == ["sonar"] and again.skipped == ["iris"]
    assert trials() == before and f"{study}.final" in before  # nothing retrained
    assert len(list((ran.result.folder / "compare-keel-sonar").iterdir())) == 2
    pd.testing.assert_frame_equal(again.records, ran.result.records)


def test_a_data_sets_study_made_by_another_experiment_is_refused_before_the_suite_runs(
    ran: Ran, tmp_path: Path
) -> None:
    """The suite's studies carry their fingerprint; a study of the same name in a shared
    storage that another experiment made (here a plain l2 sweep) is refused up front."""
    import optuna

    from regsearch.search.identity import DIGEST_ATTR

    storage = f"sqlite:///{ran.root}/optuna.db"
    study = ran.state["datasets"]["iris"]["study"]
    ours = [s for s in optuna.get_all_study_summaries(storage) if s.study_name.startswith(study)]
    stamps = {s.user_attrs.get(DIGEST_ATTR) for s in ours if not s.study_name.endswith(".claim")}
    assert len(stamps) == 1 and None not in stamps, "every study of the data set, one stamp"
    shared = tmp_path / "shared"
    clash = [f"search.study_name={study}.l1", "search.n_trials=1", "sweep.final_seeds=0"]
    regsearch.run("+sweep=l2", "task=wine", "tracking=none", "report=false", *clash,
                  "train.max_epochs=20", root=shared)  # fmt: skip
    with pytest.raises(ConfigError, match=r"created by another experiment — sweep\.name="):
        suite.run(*TINY_SUITE, root=shared)
    assert not (shared / "suite-keel12").exists(), "nothing written before the refusal"


def test_other_settings_in_the_same_folder_are_refused(ran: Ran) -> None:
    with pytest.raises(ConfigError, match=r"other settings \(train\.max_epochs=30 \(stored: 20\)"):
        suite.run(*TINY_SUITE, "train.max_epochs=30", root=ran.root)


def test_mlflow_nests_each_data_sets_sweep_under_the_suite_run(ran: Ran) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{ran.root}/mlflow.db")
    run = client.get_run(ran.state["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["regsearch.suite"] == "keel12"
    assert run.data.metrics["datasets"] == 2.0 and "dropout.wins" in run.data.metrics
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"report.html"}
    nested = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    # Every sweep run of the suite, the rerun of sonar by the test above included.
    assert {r.data.tags["regsearch.dataset"] for r in nested} == {"iris", "sonar"}
    assert all(r.data.tags["regsearch.suite"] == "keel12" for r in nested)


def test_the_default_suite_plans_twelve_data_sets_and_writes_nothing(tmp_path: Path) -> None:
    from regsearch.compose import compose_checked
    from regsearch.suite.datasets import NAMED_LISTS
    from regsearch.suite.runner import plan_suite

    typed, yaml_text = compose_checked(["+experiment=suite", f"paths.root={tmp_path}"])
    plan = plan_suite(typed, yaml_text)
    assert plan.datasets == list(NAMED_LISTS["keel12"])
    assert typed.sweep is not None and typed.sweep.final_seeds == 5 and typed.search.cv == "auto"
    assert {f.n_trials for f in typed.sweep.families.values()} == {12}
    assert set(typed.sweep.families) == set(FAMILIES)
    sizes = {name: info.used for name, info in plan.infos.items()}
    assert min(sizes.values()) == 208 and sizes["letter"] == sizes["magic"] == 5000
    assert list(tmp_path.iterdir()) == []


def test_folds_a_data_set_cannot_have_are_refused_before_anything_runs(tmp_path: Path) -> None:
    # iris has 40 rows per class in its train+validation pool: 60 stratified folds cannot be.
    with pytest.raises(ConfigError, match=r"suite data set 'iris': search\.cv=60"):
        suite.run("suite.datasets=[sonar,iris]", "search.cv=60", root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_data_set_name_exits_2_with_one_line(tmp_path: Path) -> None:
    root = tmp_path / "sweeps"
    proc = run_cli(
        tmp_path, "+experiment=suite", "suite.datasets=[sonar,nope]", f"paths.root={root}"
    )
    assert_refused(proc, "suite.datasets: 'nope' is not a KEEL data set")
    assert not root.exists()  # nothing written: no stores, no suite folder


@pytest.fixture(scope="module")
def page(ran: Ran, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = chrome(tmp_path_factory.mktemp("chromium-profile"))
    try:
        driver.get((ran.result.folder / "report.html").resolve().as_uri())
        yield driver
    finally:
        driver.quit()


@needs_browser
def test_report_opens_with_the_verdict_first_and_every_figure(page: Any) -> None:
    headings = [h.text for h in page.find_elements(By.CSS_SELECTOR, "section > h2")]
    assert headings == SECTIONS
    verdict = page.find_element(By.CSS_SELECTOR, "#verdict .verdict").text
    assert "across 2 data sets" in verdict and "smoke test" in verdict
    rows = page.find_elements(By.CSS_SELECTOR, "table.wtl tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, "td").text for r in rows] == [*FAMILIES, "baseline"]
    images = page.find_elements(By.CSS_SELECTOR, "figure img")
    assert len(images) == 2 and all(
        page.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
        for img in images
    )
    errors = [e for e in page.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == []  # a blocked network request (CSP) or a script error would show here


@needs_browser
def test_report_links_each_data_sets_own_report(page: Any, ran: Ran) -> None:
    links = page.find_elements(By.CSS_SELECTOR, "table.datasets a")
    hrefs = [a.get_attribute("href") for a in links]
    raw = [a.get_dom_attribute("href") for a in links]
    assert len(links) == 2 and all(not h.startswith(("/", "file:", "http")) for h in raw)
    assert all((ran.result.folder / h).is_file() for h in raw)
    page.get(hrefs[0])
    try:
        assert "keel-iris" in page.title
    finally:
        page.back()
