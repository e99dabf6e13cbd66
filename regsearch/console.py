"""What a user sees at the end of a sweep: the best parameters, their metrics, where to look."""

from __future__ import annotations

import sys
from typing import TextIO

from regsearch.sweep import SweepResult

__all__ = ["print_summary", "summary_lines"]


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_lines(result: SweepResult) -> list[str]:
    """The closing summary as lines of text.

    Example:
        >>> print("\\n".join(summary_lines(result)))  # doctest: +SKIP
        regsearch: dropout on moons — 30 trials (30 complete, 0 pruned, 0 failed) in 48.2 s
    """
    s = result.summary
    lines = [
        f"regsearch: {s['title']} — {s['n_trials']} trials ({s['n_complete']} complete, "
        f"{s['n_pruned']} pruned, {s['n_failed']} failed) in {s['duration_s']:.1f} s"
        f" on {s['engine']}/{s['device']}"
    ]
    best = s.get("best")
    if best:
        params = (
            ", ".join(f"{k}={_fmt(v)}" for k, v in best["params"].items()) or "(no searched params)"
        )
        lines.append(
            f"best trial {best['trial']} ({best['family']}, {best['n_seeds']} seeds): {params}"
        )
        m = best["metrics"]
        for kind in ("loss", "acc"):
            keys = [f"train_{kind}", f"val_{kind}", f"test_{kind}", f"gap_{kind}"]
            if all(k in m for k in keys):
                lines.append("  " + "  ".join(f"{k} {m[k]:.4f}" for k in keys))
    else:
        lines.append("no trial completed: see the failed trials in trials.csv")
    lines.append(f"results: {result.run_dir}/")
    for name in ("report", "trials"):
        if name in result.files:
            lines.append(f"  {name}: {result.files[name]}")
    lines.append(f"study:   {', '.join(result.study_names)} in {s['storage']}")
    if s.get("mlflow"):
        lines.append(f"browse:  mlflow ui --backend-store-uri {s['mlflow']['uri']}")
    return lines


def print_summary(result: SweepResult, stream: TextIO | None = None) -> None:
    """Print :func:`summary_lines` to ``stream`` (stdout by default)."""
    print("\n".join(summary_lines(result)), file=stream or sys.stdout)
