"""A long trial table in headless Chromium: its first page, "Show all", and sorts of every row.

Skipped with the reason when Chromium, chromedriver or selenium is missing (see tests/browser.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from regsearch.report import write_report
from tests.browser import By, chrome, needs_browser
from tests.test_report import CONFIG, make_summary, many_trials

pytestmark = needs_browser


@pytest.fixture(scope="module")
def trials() -> pd.DataFrame:
    """60 members; the lowest val_loss is in the last row, past the first page of 50."""
    frame = many_trials()
    frame.loc[len(frame) - 1, "val_loss"] = 0.001
    return frame


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory, trials: pd.DataFrame) -> Iterator[Any]:
    run_dir = tmp_path_factory.mktemp("run")
    path = write_report(run_dir, trials, make_summary(), CONFIG)
    driver = chrome(tmp_path_factory.mktemp("chromium-profile"))
    try:
        driver.get(Path(path).resolve().as_uri())
        yield driver
    finally:
        driver.quit()


def shown(page: Any, name: str) -> list[str]:
    """The texts of column ``name`` in the rows on display, top to bottom."""
    heads = [th.text.strip() for th in page.find_elements(By.CSS_SELECTOR, "table.sortable th")]
    index = heads.index(name) + 1
    rows = page.find_elements(By.CSS_SELECTOR, "table.sortable tbody tr")
    visible = [r for r in rows if r.is_displayed()]
    return [r.find_element(By.CSS_SELECTOR, f"td:nth-child({index})").text for r in visible]


def sort_ascending(page: Any, name: str) -> None:
    """Click the header of column ``name`` until the table is sorted on it, ascending."""
    heads = page.find_elements(By.CSS_SELECTOR, "table.sortable th")
    head = next(th for th in heads if th.text.strip() == name)
    head.click()
    if head.get_attribute("aria-sort") != "ascending":
        head.click()


def test_sorting_a_paged_table_sorts_every_row(page: Any, trials: pd.DataFrame) -> None:
    assert len(shown(page, "trial")) == 50
    sort_ascending(page, "val_loss")
    first_page = [float(v) for v in shown(page, "val_loss") if v]
    assert len(shown(page, "val_loss")) == 50
    assert first_page == sorted(first_page)
    # The smallest value started on the hidden rows: the sort reached it.
    assert first_page[0] == pytest.approx(trials["val_loss"].min(), rel=1e-3)


def test_show_all_then_back_to_the_first_page(page: Any, trials: pd.DataFrame) -> None:
    sort_ascending(page, "val_loss")
    button = page.find_element(By.CSS_SELECTOR, "#trials button.show-all")
    assert button.text == f"Show all {len(trials)} rows"
    button.click()
    values = shown(page, "val_loss")
    assert len(values) == len(trials)
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers)  # the sort holds for every row, not only the page
    assert button.text == "Show the first 50 rows"
    assert page.find_element(By.CSS_SELECTOR, "#trials .page-note").text == "Showing all 60 rows."
    button.click()
    assert len(shown(page, "val_loss")) == 50


def test_paging_logs_no_errors(page: Any) -> None:
    errors = [e for e in page.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == []
