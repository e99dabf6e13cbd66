"""The sweep report: seaborn figures and one self-contained HTML page.

Example:
    >>> from regsearch.report import build_report
    >>> build_report(Path("sweeps/dropout-moons/2024-05-01_12-00-00"))
"""

from __future__ import annotations

from regsearch.report.html import build_report, write_report

__all__ = ["build_report", "write_report"]
