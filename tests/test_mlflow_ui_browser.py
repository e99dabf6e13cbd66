"""A tiny real sweep logged to a real ``mlflow server``, browsed in headless Chromium.

What a user should see in the MLflow UI: the model-training view of the experiment, a runs
table with the sweep's parent run, and its trials as child runs nested under it (hidden until
the parent is expanded).

MLflow 3.17's UI chooses between its GenAI and model-training views with the switch at the
top of its sidebar (remembered by the browser, ``workflowType`` in the URL), whatever the
experiment's ``mlflow.experimentKind`` tag says; a fresh browser starts in GenAI. The test
opens the experiment with the switch's URL parameter, as the switch itself does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

import regsearch
from regsearch.outputs import SweepResult
from regsearch.tracking import EXPERIMENT_KIND, MODEL_TRAINING
from tests.browser import By, chrome, needs_browser

pytestmark = [needs_browser, pytest.mark.slow]

EXPERIMENT = "ui-browser"
WAIT_S = 30  # the UI loads its bundle and queries the server after the page itself


@pytest.fixture(scope="module")
def tracked(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    """A dropout sweep of 3 trials on the server (no final phase: it adds runs, not nesting)."""
    return regsearch.run(
        "+sweep=dropout",
        "train.max_epochs=40",
        "train.eval_every=10",
        "search.cv=0",
        "search.n_trials=3",
        "sweep.final_seeds=0",
        "report=false",
        f"tracking.uri={mlflow_server}",
        f"tracking.experiment={EXPERIMENT}",
        root=tmp_path_factory.mktemp("sweeps"),
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    driver = chrome(profile, width=1400, height=1000, local=True)
    try:
        yield driver
    finally:
        driver.quit()


def children(mlflow_server: str, tracked: SweepResult) -> dict[str, str]:
    """Run id → run name of the sweep's child runs, from the tracking server itself."""
    info = tracked.summary["mlflow"]
    client = MlflowClient(tracking_uri=mlflow_server)
    runs = client.search_runs(
        [info["experiment_id"]], f"tags.mlflow.parentRunId = '{info['parent_run_id']}'"
    )
    return {r.info.run_id: r.info.run_name for r in runs}


def run_link(page: Any, run_id: str) -> list[Any]:
    return page.find_elements(By.CSS_SELECTOR, f"a[href$='/runs/{run_id}']")


def page_text(page: Any) -> str:
    return str(page.find_element(By.TAG_NAME, "body").text)


def wait_for(page: Any, condition: Any, what: str) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(page, WAIT_S, poll_frequency=0.25).until(lambda _: condition())
    except TimeoutException:
        message = f"{what} not shown within {WAIT_S}s; the page says: {page_text(page)[:1500]}"
        raise AssertionError(message) from None


def test_the_experiment_is_tagged_as_model_training(
    mlflow_server: str, tracked: SweepResult
) -> None:
    experiment = MlflowClient(tracking_uri=mlflow_server).get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    assert experiment.experiment_id == tracked.summary["mlflow"]["experiment_id"]
    assert experiment.tags[EXPERIMENT_KIND] == MODEL_TRAINING


def test_runs_table_nests_the_trials_under_the_parent_run(
    mlflow_server: str, tracked: SweepResult, browser: Any, tmp_path: Path
) -> None:
    info = tracked.summary["mlflow"]
    parent, kids = info["parent_run_id"], children(mlflow_server, tracked)
    assert sorted(kids.values()) == ["dropout-tune-0", "dropout-tune-1", "dropout-tune-2"]
    url = f"{mlflow_server}/#/experiments/{info['experiment_id']}?workflowType=machine_learning"
    browser.get(url)
    try:
        link = wait_for(browser, lambda: run_link(browser, parent), "the parent run")[0]
        # The model-training view: a runs table, none of the GenAI view's pages.
        current = browser.current_url
        assert "/runs" in current and "workflowType=machine_learning" in current
        count = f"{1 + len(kids)} matching runs"  # the parent and its children
        wait_for(browser, lambda: count in page_text(browser), f"'{count}'")
        for genai_only in ("Evaluation runs", "Sessions", "Token Usage"):
            assert genai_only not in page_text(browser)
        client = MlflowClient(tracking_uri=mlflow_server)
        assert link.text == client.get_run(parent).info.run_name
        # Children sit under their parent: hidden until it is expanded.
        assert not any(run_link(browser, run_id) for run_id in kids)
        cell = link.find_element(By.XPATH, "./ancestor::div[@role='gridcell']")
        cell.find_element(By.TAG_NAME, "button").click()
        shown = wait_for(
            browser,
            lambda: all(run_link(browser, run_id) for run_id in kids),
            "the child runs of the expanded parent",
        )
        assert shown
        assert {run_link(browser, run_id)[0].text for run_id in kids} == set(kids.values())
    finally:
        browser.save_screenshot(str(tmp_path / "mlflow-runs.png"))
