"""The report of a real tiny sweep, opened in headless Chromium with no network.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and selenium
(the ``dev`` extra); skipped with the reason when one is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from regsearch.config import validate
from regsearch.sweep import SweepResult, run_sweep
from tests.browser import By, chrome, needs_browser
from tests.conftest import TINY, compose_config

SECTIONS = ["Verdict", "Setup", "Comparison", "Figures", "Trials", "MLflow runs"]
pytestmark = needs_browser


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    overrides = [
        "+sweep=compare",
        *TINY,
        "tracking=none",
        "sweep.final_seeds=3",
        "~sweep.families.l1",
        "~sweep.families.weight_decay",
        "~sweep.families.batchnorm",
        *(f"sweep.families.{f}.n_trials=3" for f in ("l2", "dropout", "early_stopping")),
    ]
    cfg = compose_config(tmp_path_factory.mktemp("sweeps"), *overrides)
    return run_sweep(validate(cfg), OmegaConf.to_yaml(cfg, resolve=True))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = chrome(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def page(browser: Any, swept: SweepResult) -> Any:
    browser.get((swept.run_dir / "report.html").resolve().as_uri())
    return browser


def column(page: Any, name: str) -> list[str]:
    heads = [th.text.strip() for th in page.find_elements(By.CSS_SELECTOR, "table.sortable th")]
    index = heads.index(name) + 1
    cells = page.find_elements(By.CSS_SELECTOR, f"table.sortable tbody td:nth-child({index})")
    return [c.text for c in cells]


def test_sections_in_order_and_verdict_first(page: Any) -> None:
    headings = [h.text for h in page.find_elements(By.CSS_SELECTOR, "section > h2")]
    assert headings == SECTIONS
    verdict = page.find_element(By.CSS_SELECTOR, "#verdict .verdict").text
    assert "gap" in verdict or "candidate" in verdict
    rows = page.find_elements(By.CSS_SELECTOR, "#comparison > .scroll table.compare tbody tr")
    names = [r.find_element(By.CSS_SELECTOR, "td").text.rstrip(" ★") for r in rows]
    # lr controls (``baseline@<family>``) follow the candidates only when a family's tuned lr
    # differs from the baseline's, which depends on the search.
    assert names[:4] == ["baseline", "l2", "dropout", "early_stopping"]
    assert all(n.startswith("baseline@") for n in names[4:])
    images = page.find_elements(By.CSS_SELECTOR, "#figures img")
    assert images and all(
        page.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
        for img in images
    )


def test_clicking_a_header_sorts_the_trials(page: Any) -> None:
    before = column(page, "val_loss")
    header = next(
        th
        for th in page.find_elements(By.CSS_SELECTOR, "table.sortable th")
        if th.text.strip() == "val_loss"
    )
    header.click()
    ascending = column(page, "val_loss")
    assert ascending != before
    numbers = [float(v) for v in ascending if v]
    assert numbers == sorted(numbers)
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    numbers = [float(v) for v in column(page, "val_loss") if v]
    assert numbers == sorted(numbers, reverse=True)


def test_console_has_no_errors(page: Any) -> None:
    # A blocked network request (CSP) or a script error shows up here as SEVERE.
    errors = [e for e in page.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == []


def test_screenshots_and_phone_width(page: Any, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    assert page.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    page.set_window_size(390, 844)  # a phone
    try:
        overflow = page.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0  # wide tables scroll inside their box, the page does not
        assert page.save_screenshot(str(tmp_path / "report-phone.png"))
    finally:
        page.set_window_size(1280, 2000)
