"""The sweep report: seaborn figures and one self-contained HTML page.

Example:
    Rebuild the report of a sweep, finished or still running, from its run folder:

    >>> from pathlib import Path
    >>> from regsearch.report import build_report
    >>> build_report(Path("sweeps/dropout-moons/20240501-120000"))  # doctest: +SKIP
    PosixPath('sweeps/dropout-moons/20240501-120000/report.html')
    >>> build_report(Path("no/such/run"))
    Traceback (most recent call last):
    ...
    FileNotFoundError: run folder not found: no/such/run
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regsearch.report.html import build_report, write_report

__all__ = ["build_report", "write_report"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the page pulls in matplotlib and seaborn (~1.3 s), which the
    # package's light modules (regsearch.report.runs, used by every tracked sweep) must not.
    if name in __all__:
        from regsearch.report import html

        return getattr(html, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
