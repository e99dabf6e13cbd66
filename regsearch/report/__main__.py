"""Rebuild a sweep's report, finished or running: ``python -m regsearch.report <run dir>``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from regsearch.report.html import build_report


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild ``report.html`` in a run folder (see :func:`build_report`) and print its path.

    Args:
        argv: Command-line arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        0 on success; 2 when the folder or one of its files is missing or unreadable.

    Example:
        >>> main(["sweeps/dropout-moons/20240501-120000"])  # doctest: +SKIP
        sweeps/dropout-moons/20240501-120000/report.html
        0
    """
    parser = argparse.ArgumentParser(
        prog="python -m regsearch.report",
        description=(
            "Rebuild report.html of a sweep (finished or still running) from its Optuna "
            "studies; falls back to trials.csv when the storage cannot be read."
        ),
    )
    parser.add_argument("run_dir", type=Path, help="a sweep's run folder")
    args = parser.parse_args(argv)
    if (args.run_dir / "suite.json").is_file():
        return _suite_folder(args.run_dir)
    try:
        path = build_report(args.run_dir)
    # Bad input is the user's to fix: one line, no traceback (ValueError covers bad JSON/CSV).
    except (OSError, ValueError) as exc:
        message = " ".join(str(exc).split())  # parser errors can span lines
        print(f"regsearch.report: error: {message}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _suite_folder(folder: Path) -> int:
    """A suite folder: each data set's sweep report is rebuilt; the page over all of them is
    rebuilt by the suite command itself, which reads finished data sets back without
    retraining (the folder keeps the suite's fingerprint, not its whole command line)."""
    runs = sorted(p.parent for p in folder.glob("*/*/summary.json"))
    for run_dir in runs:
        try:
            print(build_report(run_dir))
        except (OSError, ValueError) as exc:
            print(f"regsearch.report: {run_dir}: {' '.join(str(exc).split())}", file=sys.stderr)
    print(
        f"{folder} is a suite folder: {len(runs)} data set reports rebuilt; rebuild the suite's "
        "own page (report.html) by running the suite's command again, which reads the finished "
        "data sets back without retraining",
        file=sys.stderr,
    )
    return 0 if runs else 2


if __name__ == "__main__":
    sys.exit(main())
