"""What a user sees at the end of a sweep: the best parameters, their metrics, where to look."""

from __future__ import annotations

import sys
from typing import TextIO

from regsearch.comparison import (
    Candidate,
    Comparison,
    Difference,
    format_estimate,
    format_p,
)
from regsearch.comparison.formatting import signed
from regsearch.search.claims import holder_text
from regsearch.sweep import SweepResult
from regsearch.urls import DEFAULT_UI_PORT, browse_command

__all__ = ["comparison_lines", "print_summary", "summary_lines"]


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _runs_text(seeds: int, folds: int) -> str:
    """``"2 seeds"``, or ``"1 seed × 5 folds"`` when cross-validated."""
    text = f"{seeds} seed{'s' * (seeds != 1)}"
    return f"{text} × {folds} folds" if folds else text


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
        runs = _runs_text(best["n_seeds"], best.get("n_folds", 0))
        # "tuning": the verdict below rests on the retrained candidates, not on this trial.
        lines.append(f"best tuning trial {best['trial']} ({best['family']}, {runs}): {params}")
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
        mlflow = s["mlflow"]
        port = mlflow.get("ui_port", DEFAULT_UI_PORT)
        page = browse_command(mlflow["uri"], mlflow.get("experiment_id", ""), port)
        lines.append(f"browse:  {page}")
    final_by = s.get("final_by")
    if isinstance(final_by, dict):  # a shared study: another worker ran the final phase
        lines.append(f"final:   run by {holder_text(final_by)}")
    found = result.comparison
    if found is not None:
        lines += comparison_lines(found)
    elif isinstance(final_by, dict):
        lines.append(
            "verdict: not here yet: once that final phase has finished, rebuild this report "
            f"with: python -m regsearch.report {result.run_dir}"
        )
    return lines


def comparison_lines(comparison: Comparison) -> list[str]:
    r"""The verdict first, then a compact per-candidate table of the decision.

    Columns: pairs, the decision metric (mean ± 95% CI over seeds), Δ vs the baseline and its
    adjusted p, the posterior P(better by more than the margin), the candidate's standing,
    the probability of improvement (share of pairs won), Δtrain and Δgap with the gap
    diagnosis, and whether the test split agrees. ``*`` marks the recommended candidate,
    whatever its tier; none is marked when the answer is to keep the baseline.

    Example:
        >>> print("\n".join(comparison_lines(compare(trials, "classification"))))  # doctest: +SKIP
        verdict: Clear winner: dropout (dropout=0.3) beat baseline on val_loss by -0.04 (...)
          candidate   pairs  val_loss     Δ val_loss  adj p    P(better)  standing  won  ...
          baseline        5  0.52 ± 0.02
          dropout *       5  0.48 ± 0.02  -0.04       p=0.003  1.00       clear     1    ...
    """
    m, b = comparison.metric, comparison.basis
    first, *rest = comparison.verdict.splitlines()  # a constant-predictor line comes first
    rows = [_row(comparison, c) for c in comparison.candidates]
    head = ["candidate", "pairs", m, f"Δ {m}", "adj p", "P(better)", "standing", "won"]
    head += [f"Δtrain_{b}", f"Δgap_{b}", "diagnosis", "test"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines = [f"verdict: {first}", *(f"  {line}" for line in rest), _join(head, widths)]
    lines += [_join(r, widths) for r in rows]
    if comparison.recommended:
        lines.append(
            f"  * recommended ({_TIER_TEXT[comparison.tier]} on {m}; "
            f"{comparison.adjustment}-adjusted α={comparison.alpha}, margin "
            f"±{comparison.margin:.2g}; rule in the report)"
        )
    return lines


_TIER_TEXT = {"clear": "clear winner", "likely": "likely better"}


def _row(comparison: Comparison, cand: Candidate) -> list[str]:
    m, b = comparison.metric, comparison.basis
    d = cand.vs_baseline
    name = cand.name + (" *" if cand.name == comparison.recommended else "")
    p_improve = "" if cand.p_improve is None else f"{cand.p_improve:.2g}"
    diff = d.get(m)
    post = cand.posterior
    return [
        name,
        str(cand.n_pairs),
        format_estimate(cand.metrics.get(m)),
        "" if diff is None else signed(diff.mean),
        format_p(cand.p_adjusted),
        "" if post is None else f"{post.better:.2f}",
        cand.standing,
        p_improve,
        _delta(d.get(f"train_{b}")),
        _delta(d.get(f"gap_{b}")),
        cand.diagnosis,
        "" if cand.test is None else cand.test.status,
    ]


def _delta(diff: Difference | None) -> str:
    return "" if diff is None else signed(diff.mean)


def _join(cells: list[str], widths: list[int]) -> str:
    text = "  ".join(
        f"{c:<{w}}" if i != 1 else f"{c:>{w}}"
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )
    return ("  " + text).rstrip()


def print_summary(result: SweepResult, stream: TextIO | None = None) -> None:
    """Print :func:`summary_lines` to ``stream`` (stdout by default)."""
    print("\n".join(summary_lines(result)), file=stream or sys.stdout)
