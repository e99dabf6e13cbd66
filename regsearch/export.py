"""The comparison as a table for a paper: ``python -m regsearch.export DIR [DIR ...]``.

Each DIR is a sweep's run folder (its ``summary.json``) or a suite folder (its
``records.csv``); several folders give one table, row blocks side by side, so two finished
sweeps compare at a glance. ``--format csv`` writes every column of
:func:`regsearch.results.comparison_frame`; ``--format latex`` a compact booktabs table
written by pandas (effect with its 95% interval, adjusted p, P(better)).

Example:
    >>> main(["sweeps/l2-wine/20261207-120000", "--format", "latex"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from regsearch.results import COMPARISON_COLUMNS, comparison_frame

__all__ = ["comparison_table", "latex_table", "main"]

FORMATS = ("csv", "latex")
#: The suite's per-data-set records (``records.csv``) hold one row per candidate already.
_SUITE_RECORDS = "records.csv"
_SUITE_NAMES = {"dataset": "task", "low": "ci_low", "high": "ci_high", "p_holm": "p_adjusted"}


def comparison_table(folders: Sequence[Path]) -> pd.DataFrame:
    """The comparison rows of every folder, with the folder they came from.

    Raises:
        FileNotFoundError: A folder holds neither ``summary.json`` nor ``records.csv``.
        ValueError: A sweep that made no comparison (no final phase), or unreadable JSON.
    """
    frames = [_folder_table(Path(f)) for f in folders]
    return pd.concat(frames, ignore_index=True)


def _folder_table(folder: Path) -> pd.DataFrame:
    summary, records = folder / "summary.json", folder / _SUITE_RECORDS
    if summary.is_file():
        data = json.loads(summary.read_text(encoding="utf-8"))
        table = comparison_frame(data)
        if table.empty:
            raise ValueError(f"{folder}: this sweep made no comparison (no final phase)")
        table = table.assign(**_provenance_columns(data.get("provenance")))
    elif records.is_file():
        table = _suite_table(pd.read_csv(records))
    else:
        raise FileNotFoundError(f"{folder}: neither summary.json (a sweep) nor {_SUITE_RECORDS}")
    table.insert(0, "folder", str(folder))
    return table


def _provenance_columns(origin: Any) -> dict[str, str]:
    """Where the numbers came from, repeated on each row: regsearch and torch versions, the
    commit, the device."""
    if not isinstance(origin, dict):
        return {}
    packages = origin.get("packages") or {}
    return {
        "regsearch_version": str(origin.get("regsearch", "")),
        "commit": str(origin.get("commit", "")),
        "torch_version": str(packages.get("torch", "")),
        "device": str(origin.get("device", "")),
    }


def _suite_table(records: pd.DataFrame) -> pd.DataFrame:
    """A suite's records under the sweep table's column names (its own columns kept after)."""
    table = records.rename(columns=_SUITE_NAMES).assign(sweep="suite")
    extra = [c for c in table.columns if c not in COMPARISON_COLUMNS]
    return table.reindex(columns=[*COMPARISON_COLUMNS, *extra])


def latex_table(table: pd.DataFrame) -> str:
    """A compact LaTeX (booktabs) table of a sweep comparison table."""
    shown = pd.DataFrame(
        {
            "Sweep": table["sweep"] + " / " + table["task"],
            "Candidate": table["candidate"],
            "Setting": table["params"].map(lambda v: "" if pd.isna(v) else str(v)),
            "Standing": table["standing"],
            "Mean": table["mean"].map(_number),
            r"$\Delta$ [95\% CI]": [_interval(r) for r in table.itertuples()],
            "Adj. $p$": table["p_adjusted"].map(_number),
            "P(better)": table["p_better"].map(lambda v: _number(v, 2)),
        }
    )
    metric = ", ".join(sorted(set(table["metric"].dropna())))
    caption = f"Paired comparison against the unregularized baseline ({metric})."
    return shown.to_latex(index=False, escape=False, caption=caption, label="tab:regsearch")


def _number(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "--"
    return f"{float(value):.{digits}g}" if isinstance(value, int | float) else str(value)


def _interval(row: Any) -> str:
    effect = row.effect
    if effect is None or pd.isna(effect):
        return "--"
    low, high = row.ci_low, row.ci_high
    return f"{effect:+.3g} [{low:+.3g}, {high:+.3g}]"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the comparison table of the folders in ``argv``; 0, or 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="python -m regsearch.export",
        description="Write the comparison table of sweeps (or suites) as CSV or LaTeX.",
    )
    parser.add_argument("folders", type=Path, nargs="+", help="run folders or suite folders")
    parser.add_argument("--format", choices=FORMATS, default="csv")
    parser.add_argument("--out", type=Path, help="the file to write (default: standard output)")
    args = parser.parse_args(argv)
    try:
        table = comparison_table(args.folders)
        text = latex_table(table) if args.format == "latex" else table.to_csv(index=False)
        if args.out is None:
            sys.stdout.write(text)
        else:
            args.out.write_text(text, encoding="utf-8")
    except (OSError, ValueError, KeyError) as exc:
        print(f"regsearch.export: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.out is not None:
        print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
