"""What a user sees at the end of a sweep: the best parameters, their metrics, where to look."""

from __future__ import annotations

import sys
from typing import TextIO

from regsearch.comparison import Comparison, compare, format_estimate, format_p
from regsearch.sweep import SweepResult

__all__ = ["comparison_lines", "print_summary", "summary_lines"]


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
    final = result.trials[result.trials["phase"] == "final"]
    if s["n_trials"] == 0 and not final.empty:
        # A settings-only run (experiment preset): nothing was tuned, candidates were retrained.
        n_seeds = final.groupby("family")["seed"].nunique().max()
        done = f"{final['family'].nunique()} settings × {n_seeds} seeds"
    else:
        done = (
            f"{s['n_trials']} trials ({s['n_complete']} complete, "
            f"{s['n_pruned']} pruned, {s['n_failed']} failed)"
        )
    lines = [
        f"regsearch: {s['title']} — {done} in {s['duration_s']:.1f} s"
        f" on {s['engine']}/{s['device']}"
    ]
    best = s.get("best")
    if s["n_trials"] == 0 and not final.empty:
        pass  # the comparison below says everything
    elif best:
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
    kind, searched = s.get("kind", "regression"), list(s.get("params") or [])
    found = compare(result.trials, kind, searched) if not result.trials.empty else None
    if found is not None:
        lines += comparison_lines(found)
    return lines


def comparison_lines(comparison: Comparison) -> list[str]:
    """The verdict and a compact per-candidate table (test metric and gap, mean ± 95% CI).

    Example:
        >>> print("\n".join(comparison_lines(compare(trials, "classification"))))  # doctest: +SKIP
        verdict: dropout (dropout=0.19) cut the accuracy gap from 0.048 to 0.015 (...)
          candidate       seeds  test_acc         gap_acc          Δ gap vs baseline
          baseline            5  0.828 ± 0.016    0.048 ± 0.011
          dropout *           5  0.812 ± 0.01     0.0147 ± 0.021   -0.033 (p=0.0075)
    """
    b = comparison.basis
    gap_key = f"gap_{b}"
    names = [c.name + (" *" if c.name == comparison.winner else "") for c in comparison.candidates]
    width = max(len("candidate"), *(len(n) for n in names))
    head = f"  {'candidate':<{width}}  seeds  {'test_' + b:<16} {gap_key:<16} Δ gap vs baseline"
    lines = [f"verdict: {comparison.verdict}", head]
    for name, cand in zip(names, comparison.candidates, strict=True):
        diff = cand.vs_baseline.get(gap_key)
        delta = ""
        if diff is not None:
            p = format_p(diff.p_value)
            delta = f"{diff.mean:+.2g}" + (f" ({p})" if p else "")
        lines.append(
            f"  {name:<{width}}  {cand.n_seeds:>5}  "
            f"{format_estimate(cand.metrics.get(f'test_{b}')):<16} "
            f"{format_estimate(cand.metrics.get(gap_key)):<16} {delta}".rstrip()
        )
    if comparison.winner:
        lines.append("  * winner, chosen on validation data (see the report for the rule)")
    return lines


def print_summary(result: SweepResult, stream: TextIO | None = None) -> None:
    """Print :func:`summary_lines` to ``stream`` (stdout by default)."""
    print("\n".join(summary_lines(result)), file=stream or sys.stdout)
