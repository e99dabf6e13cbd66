"""Plain data for the report's sections: the verdict, the setup and the comparison table.

Each function turns the sweep's summary, config and comparison into strings the template only
has to place, so the wording can be tested without rendering HTML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import yaml

from regsearch.comparison import (
    Candidate,
    Comparison,
    Difference,
    Estimate,
    format_effect,
    format_estimate,
    format_interval,
    format_p,
)
from regsearch.comparison.references import cite, method_keys
from regsearch.report.members import complete_rows, gap_column
from regsearch.report.strength import weakest_trial
from regsearch.search.claims import holder_text

__all__ = [
    "CompareRow",
    "DiagnosisRow",
    "Verdict",
    "best_view",
    "compare_rows",
    "decision_facts",
    "diagnosis_rows",
    "format_value",
    "setup_cards",
    "verdict",
]

# Keys shown per setup card, in order; anything else is in the resolved config below them.
_MODEL_KEYS = ("hidden", "activation", "batch_norm", "dropout", "init", "init_std", "bias")
_TRAIN_KEYS = ("optimizer", "lr", "momentum", "batch_size", "max_epochs", "eval_every")
_SEARCH_KEYS = ("sampler", "pruner", "n_trials", "repeats", "population", "metric")


@dataclass(frozen=True)
class Verdict:
    """The answer at the top of the report."""

    sentence: str
    conclusive: bool  # strong enough evidence to act on
    rule: str  # how the answer was chosen ("How this was decided")
    test: str = ""  # the test confirmation beside the verdict: "test agrees (test_loss -0.03)"
    test_status: str = ""  # "agrees", "disagrees", "too small to tell", "not available"
    tier: str = ""  # the comparison's tier (clear, likely, equivalent, undecided, none)


@dataclass(frozen=True)
class CompareRow:
    """One candidate's row in the comparison table (cells already formatted)."""

    name: str
    params: str
    n: str  # complete seeds, with failed members when any
    train: tuple[str, str]  # (mean, "± half-width"); the second is empty with one seed
    val: tuple[str, str]
    test: tuple[str, str]
    gap: tuple[str, str]
    d_gap: str  # paired difference vs the baseline (mean)
    ci_gap: str  # its 95% interval, "[-0.05, -0.01]"
    p_gap: str  # "p=0.037", "p<0.001", or empty without a test
    d_val: str
    ci_val: str
    p_val: str
    d_test: str
    ci_test: str
    role: str  # "baseline", "winner" (the recommended candidate, any tier) or ""


@dataclass(frozen=True)
class DiagnosisRow:
    """One non-baseline candidate's decision and gap diagnosis (cells already formatted)."""

    name: str
    role: str  # "winner" (recommended), "closest" or ""
    pairs: str  # (seed, fold) pairs with the baseline
    d_val: str  # decision-metric effect with its 95% interval, "-0.041 [-0.06, -0.022]"
    p_raw: str  # the test's own p
    p_adj: str  # adjusted p (max-t or Holm)
    p_improve: str  # probability of improvement, "0.8"
    p_better: str  # posterior P(better by more than the margin), "0.93"
    p_equivalent: str  # posterior P(within the margin)
    standing: str  # clear, likely, equivalent, not better, worse, undecided
    d_train: str
    d_gap: str
    label: str  # gap diagnosis
    test: str  # "agrees (test_loss -0.02)", "disagrees (...)", "not available"


def format_value(value: object) -> str:
    """Text for one table cell: numbers to 4 significant digits, missing values empty.

    Example:
        >>> format_value(0.123456), format_value(3.0), format_value(float("nan"))
        ('0.1235', '3', '')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | float) or hasattr(value, "dtype"):
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return str(value)
        if math.isnan(number):
            return ""
        return f"{number:.4g}"
    return str(value)


def verdict(
    comparison: Comparison | None, summary: dict[str, Any], trials: pd.DataFrame
) -> Verdict:
    """The verdict: the comparison's sentence, or a plain account of a tuning-only sweep.

    A sweep without a final phase never re-trained its best trial on fresh seeds, so its
    numbers carry the optimism of selection; the sentence says so and points to compare.

    Example:
        >>> verdict(None, {"best": None}, trials).sentence  # doctest: +SKIP
        'No trial completed, so there is no answer yet.'
    """
    if comparison is not None:
        focus = comparison.candidate(comparison.focus) if comparison.focus else None
        check = focus.test if focus is not None else None
        test = "" if focus is None else f"{focus.name}: {_test_cell(focus)}"
        return Verdict(
            comparison.verdict,
            comparison.conclusive,
            comparison.rule,
            test=test,
            test_status="" if check is None else check.status,
            tier=comparison.tier,
        )
    rule = (
        f"Best trial by mean {summary.get('metric', 'validation metric')} over its seeds "
        "(validation data only); test numbers are reported, never used to choose."
    )
    final_by = summary.get("final_by")
    if isinstance(final_by, dict):  # a shared study's final phase ran in another worker
        sentence = (
            f"The tested verdict comes from the final phase, run by {holder_text(final_by)}; "
            "it had not finished when this report was written. Once it has, rebuild this "
            "report with: python -m regsearch.report <this run folder>."
        )
        return Verdict(sentence, False, rule)
    return Verdict(_tuning_sentence(summary, trials), False, rule)


def _tuning_sentence(summary: dict[str, Any], trials: pd.DataFrame) -> str:
    best = summary.get("best")
    if not isinstance(best, dict):
        return "No trial completed, so there is no answer yet."
    kind = summary.get("kind", "regression")
    basis = "acc" if kind == "classification" else "loss"
    gap = gap_column(kind)
    metrics = best.get("metrics") or {}
    params = _params_text(best.get("params") or {})
    n = best.get("n_seeds")
    parts = [
        f"{k} {_num(metrics[k])}" for k in (gap, f"val_{basis}", f"test_{basis}") if k in metrics
    ]
    folds = best.get("n_folds") or 0
    seeds = f" (mean of {n} seed{'s' * (n != 1)})" if isinstance(n, int) else ""
    if seeds and folds:
        seeds = f" (mean of {n} seed{'s' * (n != 1)} × {folds} folds)"
    text = (
        f"Best of {summary.get('n_complete', '?')} complete trials: {params}"
        f" — {', '.join(parts)}{seeds}."
    )
    weak = weakest_trial(trials, list(summary.get("params") or []))
    if weak is not None and (weak[1] != best.get("trial") or weak[0] != best.get("family")):
        rows = complete_rows(trials)
        rows = rows.loc[(rows["trial"] == weak[1]) & (rows["family"].astype(str) == weak[0])]
        if not rows.empty and gap in rows:
            values = {p: rows[p].iloc[0] for p in summary.get("params") or [] if p in rows}
            weak_params = _params_text({k: v for k, v in values.items() if pd.notna(v)})
            text += f" The most weakly regularized trial ({weak_params}) had {gap} "
            text += f"{_num(rows[gap].mean())}."
    return (
        text + " Not re-trained on fresh seeds, so there is no confidence interval: run "
        "+sweep=compare for a tested verdict."
    )


def best_view(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The best tuning trial's parameters and metrics (with the unregularized ones if known)."""
    best = summary.get("best")
    if not isinstance(best, dict):
        return None
    metrics = best.get("metrics") or {}
    baseline = summary.get("baseline") or {}
    return {
        "trial": best.get("trial"),
        "family": best.get("family") or "",
        "params": [(k, format_value(v)) for k, v in (best.get("params") or {}).items()],
        "metrics": [
            (k, format_value(metrics[k]), format_value(baseline.get(k)))
            for k in sorted(metrics, key=_metric_order)
        ],
        "has_baseline": bool(baseline),
        "objective": summary.get("metric"),
        "direction": summary.get("direction"),
    }


def compare_rows(comparison: Comparison, basis: str | None = None) -> list[CompareRow]:
    """The comparison table: mean ± 95% CI per split, paired differences vs the baseline.

    Train, validation and gap are over the seeds (folds averaged within a seed); test over
    the seeds' test rows. On the decision metric the p-value is adjusted ("max-t p=").

    Example:
        >>> [r.name for r in compare_rows(compare(trials, "classification"))]  # doctest: +SKIP
        ['baseline', 'l2', 'dropout']
    """
    b = basis or comparison.basis
    rows = []
    for c in comparison.candidates:
        diffs = c.vs_baseline
        role = (
            "baseline"
            if c.name == comparison.baseline
            else "winner"
            if c.name == comparison.recommended
            else ""
        )
        n = str(c.n_seeds) + (f" ({c.n_failed} failed)" if c.n_failed else "")
        rows.append(
            CompareRow(
                name=c.name,
                params=c.params_text,
                n=n,
                train=_est(c.metrics.get(f"train_{b}")),
                val=_est(c.metrics.get(f"val_{b}")),
                test=_est(c.metrics.get(f"test_{b}")),
                gap=_est(c.metrics.get(f"gap_{b}")),
                d_gap=_diff(diffs.get(f"gap_{b}")),
                ci_gap=_ci(diffs.get(f"gap_{b}")),
                p_gap=_p(diffs.get(f"gap_{b}")),
                d_val=_diff(diffs.get(f"val_{b}")),
                ci_val=_ci(diffs.get(f"val_{b}")),
                p_val=_val_p(comparison, c, b),
                d_test=_diff(diffs.get(f"test_{b}")),
                ci_test=_ci(diffs.get(f"test_{b}")),
                role=role,
            )
        )
    return rows


def diagnosis_rows(comparison: Comparison) -> list[DiagnosisRow]:
    """Per non-baseline candidate: the decision effect, adjusted p, posterior, standing,
    P(improve) and gap diagnosis.

    Example:
        >>> [r.label for r in diagnosis_rows(compare(trials, "regression"))]  # doctest: +SKIP
        ['generalizes better', 'closes the gap by fitting worse']
    """
    m, b = comparison.metric, comparison.basis
    rows = []
    for c in comparison.candidates:
        diff = c.vs_baseline.get(m)
        if diff is None:
            continue
        role = "winner" if c.name == comparison.recommended else ""
        role = role or ("closest" if c.name == comparison.closest else "")
        post = c.posterior
        rows.append(
            DiagnosisRow(
                name=c.name,
                role=role,
                pairs=str(diff.n),
                d_val=_effect(diff),
                p_raw=format_p(diff.p_value),
                p_adj=format_p(c.p_adjusted),
                p_improve="" if c.p_improve is None else f"{c.p_improve:.2g}",
                p_better="" if post is None else f"{post.better:.2f}",
                p_equivalent="" if post is None else f"{post.equivalent:.2f}",
                standing=c.standing,
                d_train=_effect(c.vs_baseline.get(f"train_{b}")),
                d_gap=_effect(c.vs_baseline.get(f"gap_{b}")),
                label=c.diagnosis,
                test=_test_cell(c),
            )
        )
    return rows


def decision_facts(comparison: Comparison, summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, value) facts of the decision: metric, pairs, seeds, folds, test, correction, α."""
    folds = [f for f in comparison.folds if f >= 0]
    seeds = summary.get("final_seeds") or list(comparison.seeds)
    cv = summary.get("cv") if isinstance(summary.get("cv"), dict) else None
    facts = [
        ("decision metric", comparison.metric),
        ("sweep objective", comparison.objective),
        ("baseline", comparison.baseline or "none finished"),
        ("seeds", ", ".join(str(s) for s in seeds)),
        ("folds", f"{len(folds)} ({', '.join(map(str, folds))})" if folds else "none (holdout)"),
        ("paired on", "(seed, fold)" if folds else "seed"),
        ("test", comparison.method),
        ("rule", comparison.rule_name),
        ("tier", comparison.tier),
        ("multiple tests", _ADJUSTED[comparison.adjustment]),
        ("equivalence margin", f"±{format_value(comparison.margin)} {comparison.metric}"),
        ("alpha", format_value(comparison.alpha)),
        ("test data", "refit on train+val, per seed" if folds else "same runs, per seed"),
    ]
    randomly = summary.get("random_search") or []
    if randomly:
        facts.append(("searched at random", ", ".join(map(str, randomly))))
    left_out = summary.get("left_out") or {}
    if left_out:
        facts.append(("left out", "; ".join(f"{k} ({v})" for k, v in left_out.items())))
    if comparison.val_train_ratio is not None:
        facts.insert(7, ("n_val/n_train", format_value(comparison.val_train_ratio)))
    if cv:
        sizes = ", ".join(f"{k} {format_value(v)}" for k, v in cv.items() if v is not None)
        facts.append(("cross-validation", sizes))
    if comparison.constant is not None:
        facts.append((f"constant predictor {comparison.metric}", format_value(comparison.constant)))
    final_by = summary.get("final_by")
    if isinstance(final_by, dict):
        facts.append(("final phase run by", holder_text(final_by)))
    keys = method_keys(comparison.method, comparison.adjustment, comparison.rule_name)
    facts.append(("references", " ".join(f"[{i}] {cite(k)}" for i, k in enumerate(keys, 1))))
    return facts


def setup_cards(
    summary: dict[str, Any], config_yaml: str
) -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, [(key, value)]) cards: task, model, training, search budget, run.

    Values come from the resolved config where the summary does not have them; a config that
    cannot be parsed only leaves those cards shorter.
    """
    try:
        cfg = yaml.safe_load(config_yaml) or {}
    except yaml.YAMLError:
        cfg = {}
    cfg = cfg if isinstance(cfg, dict) else {}
    task = _section(cfg, "task")
    task_items = [
        ("task", f"{summary.get('task', task.get('name', ''))} ({summary.get('kind', '')})")
    ]
    task_items += [
        (k, _text(v)) for k, v in task.items() if k != "name" and not isinstance(v, dict)
    ]
    task_items += _table_items(summary.get("data"))
    search = _section(cfg, "search")
    sweep = _section(cfg, "sweep")
    budget = [("sweep", _text(summary.get("sweep", sweep.get("name", ""))))]
    skip = {"n_trials"} if sweep.get("families") else set()
    budget += [(k, _text(search[k])) for k in _SEARCH_KEYS if k in search and k not in skip]
    if sweep.get("families"):
        per = {k: (v or {}).get("n_trials") for k, v in sweep["families"].items()}
        budget.append(("trials per family", ", ".join(f"{k} {n}" for k, n in per.items())))
    if sweep.get("final_seeds") and (sweep.get("families") or sweep.get("settings")):
        budget.append(("final seeds", _text(sweep["final_seeds"])))
    duration = summary.get("duration_s")
    run = [
        ("engine", f"{summary.get('engine', '')}/{summary.get('device', '')}".strip("/")),
        ("duration", "" if duration is None else f"{format_value(duration)} s"),
        ("trials", _counts(summary)),
        ("Optuna storage", _text(summary.get("storage", ""))),
        ("studies", _studies_text(summary.get("studies"))),
    ]
    cards = [
        ("Task", task_items),
        ("Model", _pick(_section(cfg, "model"), _MODEL_KEYS) + _architecture_items(summary)),
        ("Training", _pick(_section(cfg, "train"), _TRAIN_KEYS)),
        ("Search budget", budget),
        ("Run", [(k, v) for k, v in run if v]),
        ("Provenance", _provenance_items(summary.get("provenance"))),
    ]
    return [(title, items) for title, items in cards if items]


def _architecture_items(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The network's layers and parameter counts (summary ``architecture``); older runs
    have none."""
    arch = summary.get("architecture")
    if not isinstance(arch, dict):
        return []
    shape = "×".join(str(n) for n in summary.get("input_shape") or [])
    return [
        ("input", shape),
        ("layers", " → ".join(arch.get("layers") or [])),
        (
            "parameters",
            f"{arch.get('n_parameters', 0):,}, of which {arch.get('n_penalized', 0):,} in "
            "weights (conv and linear): L1, L2 and weight decay act on those, never on "
            "biases or batch-norm parameters",
        ),
    ]


def _provenance_items(origin: Any) -> list[tuple[str, str]]:
    """Software and machine of the run (summary ``provenance``); nothing for older runs."""
    if not isinstance(origin, dict):
        return []
    commit = origin.get("commit") or "not a git checkout"
    packages = origin.get("packages") or {}
    return [
        ("regsearch", f"{origin.get('regsearch', '')} ({commit})"),
        ("Python", f"{origin.get('python', '')} on {origin.get('platform', '')}"),
        ("device", _text(origin.get("device", ""))),
        ("host", _text(origin.get("host", ""))),
        ("packages", ", ".join(f"{k} {v}" for k, v in packages.items())),
    ]


def _table_items(data: Any) -> list[tuple[str, str]]:
    """A user's table (summary ``data``): each column → its model inputs, the cells imputed,
    the columns left out; nothing for a built-in task."""
    if not isinstance(data, dict):
        return []
    inputs = [c for c in data.get("inputs") or [] if isinstance(c, dict)]
    widths = ", ".join(
        f"{c.get('name')} → {c.get('width')}{' (one-hot)' if c.get('kind') == 'text' else ''}"
        for c in inputs
    )
    total = sum(int(c.get("width") or 0) for c in inputs)
    items = [("model inputs", f"{total} from {len(inputs)} columns: {widths}")]
    imputed = [f"{c.get('name')} {c.get('imputed')}" for c in inputs if c.get("imputed")]
    if imputed:
        items.append(("imputed cells", f"{', '.join(imputed)} (of {data.get('rows')} rows)"))
    left_out = [c for c in data.get("left_out") or [] if isinstance(c, dict)]
    if left_out:
        listed = ", ".join(f"{c.get('name')} ({c.get('why')})" for c in left_out)
        items.append(("columns left out", listed))
    return items


def _studies_text(studies: Any) -> str:
    """``"base.{l1, l2, final}"`` when the study names share a base, else the names."""
    names = [str(v) for v in (studies or {}).values()] if isinstance(studies, dict) else []
    bases = {n.rsplit(".", 1)[0] for n in names}
    if len(names) > 1 and len(bases) == 1 and all("." in n for n in names):
        return f"{bases.pop()}.{{{', '.join(n.rsplit('.', 1)[1] for n in names)}}}"
    return ", ".join(names)


def _section(cfg: dict[str, Any], key: str) -> dict[str, Any]:
    value = cfg.get(key)
    return value if isinstance(value, dict) else {}


def _pick(section: dict[str, Any], keys: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(k, _text(section[k])) for k in keys if k in section]


def _counts(summary: dict[str, Any]) -> str:
    if summary.get("n_trials") is None:
        return ""
    return (
        f"{summary.get('n_trials')} ({summary.get('n_complete', 0)} complete, "
        f"{summary.get('n_pruned', 0)} pruned, {summary.get('n_failed', 0)} failed)"
    )


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if value is None:
        return "null"
    return format_value(value)


def _params_text(params: dict[str, Any]) -> str:
    """Active settings only: a switched-off flag (``l2_on=false``) says nothing new."""
    active = {k: v for k, v in params.items() if not _is_off(v)}
    return ", ".join(f"{k}={format_value(v)}" for k, v in active.items()) or "no regularizer"


def _is_off(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "false"
    return isinstance(value, bool | np.bool_) and not value


def _num(value: Any) -> str:
    return f"{float(value):.3g}"


def _est(est: Estimate | None) -> tuple[str, str]:
    mean, _, half = format_estimate(est).partition(" ± ")
    return mean, f"± {half}" if half else ""


def _diff(diff: Difference | None) -> str:
    return "" if diff is None else f"{diff.mean:+.2g}"


def _ci(diff: Difference | None) -> str:
    return format_interval(diff)


def _p(diff: Difference | None) -> str:
    return format_p(diff.p_value) if diff else ""


_ADJUSTED = {
    "max-t": "step-down max-t across the candidates (p adjusted, intervals not)",
    "holm": "Holm step-down across the candidates (p adjusted, intervals not)",
}


def _val_p(comparison: Comparison, cand: Candidate, basis: str) -> str:
    """Adjusted p on the decision metric (the one that decides), else the raw p."""
    if f"val_{basis}" == comparison.metric and cand.p_adjusted is not None:
        return f"{_ADJUST_LABEL[comparison.adjustment]} {format_p(cand.p_adjusted)}"
    return _p(cand.vs_baseline.get(f"val_{basis}"))


_ADJUST_LABEL = {"max-t": "max-t", "holm": "Holm"}


def _effect(diff: Difference | None) -> str:
    return format_effect(diff)


def _test_cell(cand: Candidate) -> str:
    check = cand.test
    if check is None or check.diff is None:
        return "not available"
    return f"{check.status} ({check.metric} {check.diff.mean:+.2g})"


def _metric_order(name: str) -> tuple[int, str]:
    prefixes = ("val_", "test_", "gap_", "train_")
    rank = next((i for i, p in enumerate(prefixes) if name.startswith(p)), len(prefixes))
    return rank, name
