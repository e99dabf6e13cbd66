"""Headless Chromium for the browser tests: where it is, its flags and one way to start it.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and selenium
(the ``dev`` extra). A test module that imports this is skipped with the reason when one is
missing, unless ``REGSEARCH_REQUIRE_BROWSER=1`` (CI sets it): then a missing browser fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "FLAGS",
    "LOCAL_ONLY",
    "REQUIRED",
    "By",
    "chrome",
    "needs_browser",
]

# CI installs the browser and sets this, so there a missing browser fails instead of skipping.
REQUIRED = os.environ.get("REGSEARCH_REQUIRE_BROWSER") == "1"
if not REQUIRED:
    pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: nothing can leave the machine
    "--hide-scrollbars",
]

if REQUIRED:
    assert CHROMIUM and CHROMEDRIVER, (
        "REGSEARCH_REQUIRE_BROWSER=1 but chromium/chromedriver missing"
    )
#: Set as a module's ``pytestmark``: its tests skip, with the reason, without the browser.
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)",
)


#: With a local server: only 127.0.0.1 is reachable (the rule maps IP literals too).
LOCAL_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def chrome(profile: Path, width: int = 1280, height: int = 2000, local: bool = False) -> Any:
    """A headless Chromium driver with a fresh profile in ``profile``; the caller quits it.

    Nothing resolves (see :data:`FLAGS`), so nothing can leave the machine; with ``local``,
    servers on 127.0.0.1 are reachable.
    """
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(LOCAL_ONLY if local and flag.startswith("--host-resolver") else flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
