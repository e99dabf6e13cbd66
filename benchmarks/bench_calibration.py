"""Calibration of the comparison's decision rules: how often they claim a winner that is not
there, and how much of a real improvement they capture.

Each scenario runs regsearch's final phase with *fixed* candidate settings (nothing tuned:
``+sweep.settings``, as the experiment presets do) with a test set large enough to stand for
the truth. *Null* scenarios have candidates that cannot differ from the baseline; *signal*
scenarios have regularizers that help (and one that hurts).

**Replications = draws × seed blocks.** One regsearch run (a *draw*: ``task.data_seed=r``,
``seed=SEED_STRIDE·r``) trains every candidate on ``sweep.final_seeds = B × 5`` fresh seeds
(each seed with its ``search.final_cv`` folds and one refit). A *replication* is one block of
5 consecutive seeds: the candidates' rows restricted to those seeds, exactly what a default
run (``sweep.final_seeds=5``) would have seen. Blocks of one draw share the data draw but not
the training randomness (seeds, fold partitions, initializations); different draws share
neither. So replications of one draw are not independent, and the Clopper–Pearson bounds
below, which treat them as such, lean optimistic. The truth of a replication is its own
block's refits (``fold == -1``) scored on the large test set.

- null_tiny: 3 blocks per draw, each a replication.
- null_seeds: the baseline alone on 30 seeds (6 blocks) per draw; each replication takes 5 of
  the 6 blocks, one as the baseline and four relabelled as ``null1..null4`` (see
  :func:`relabel`), in ``arrangements`` seeded orders per draw.
- signal scenarios: 3 blocks per draw, each a replication.

Every rule of ``regsearch.comparison.CANDIDATE_RULES`` is applied to every replication
through ``compare(..., rule=rule)`` and scored against the truth:

- null: the share of replications with a *clear* recommendation (a false claim; target
  ≤ 5%), with a *likely* one (target ≤ 10%), and with any recommendation, each with a
  one-sided 95% Clopper–Pearson upper bound;
- signal: the tier counts, the captured share of the available test improvement
  (Σ gain of the recommendation / Σ gain of the best candidate, keeping the baseline counts
  0; target ≥ 90%) on test_loss and, for classification, test_acc, how many
  recommendations are worse than the baseline on test_loss (target 0), and which candidates
  were recommended how often.

Stage 1 (generate) is cached per (scenario, draw) under ``--cache``; a rerun trains only what
is missing or was generated with other overrides. Stage 2 (evaluate) is quick and reruns
every time, so a changed rule needs no retraining. Run from the repository root:

    .venv/bin/python benchmarks/bench_calibration.py                  # all scenarios
    .venv/bin/python benchmarks/bench_calibration.py --only signal_mlp --draws 2
    .venv/bin/python benchmarks/bench_calibration.py --cache /tmp/calibration

It prints one line per training run, then markdown tables (paste into benchmarks/README.md),
and writes the per-replication outcomes to ``<cache>/calibration_rows.csv``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

import regsearch
from regsearch import comparison
from regsearch.final import FINAL_SEED_OFFSET

Settings = Mapping[str, Mapping[str, float]]  # candidate name → fixed train.* values

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO / "sweeps" / "calibration"  # sweeps/ is git-ignored
BASELINE = "baseline"
SUMMARY_KEYS = ("kind", "metric", "cv", "constant_predictor")
TIERS = ("clear", "likely", "equivalent", "undecided", "none")
# Draw r trains on data_seed=r with seed=SEED_STRIDE*r: its final seeds are
# seed + FINAL_SEED_OFFSET + k (k < final_seeds ≤ 30 < SEED_STRIDE), so no two draws share a
# seed (nor, with cross-validation, a fold partition, which the seed draws).
SEED_STRIDE = 100
BLOCK = 5  # seeds per replication: the default sweep.final_seeds
NULL_CANDIDATES = 4  # null_seeds: blocks relabelled as null1..null4 beside the baseline's
ARRANGEMENT_SEED = 20261124  # seeds the order of the blocks in null_seeds' arrangements
CONFIDENCE = 0.95  # of the one-sided Clopper–Pearson upper bounds in the null tables

# The moons regime of every MLP scenario: 100 train+val rows, a 64-64 ReLU MLP, full-batch
# gradient descent at the task's lr 0.2. Two departures from the task's defaults, each
# measured on one draw: torch's default init, because the task's N(0, 1) init makes a 64-wide
# net so overconfident that its val_loss (2.35) is 3.5× the constant predictor's; and 1,000
# steps, because after the task's 2,000 the unregularized net's test_loss (1.01) is worse than
# predicting ½ everywhere (0.69), so an underfitting "harmful" candidate would help, while
# after 500 the regularizers barely help (test_loss 0.475 → 0.443 at best).
MOONS_MLP = (
    "task=moons",
    "task.n_pool=100",
    "model.hidden=[64,64]",
    "model.init=default",
    "train.max_epochs=1000",
)
# The d2l weight-decay setup (conf/experiment/d2l_weight_decay.yaml) with a 2,000-row test set;
# cross-validated over its 120-row pool (20 train + 100 validation) instead of the book's split.
D2L_LINEAR = (
    "task=highdim_linear",
    "task.n_test=2000",
    "model.hidden=[]",
    "model.bias=true",
    "model.init=normal",
    "model.init_std=1.0",
    "train.lr=0.003",
    "train.momentum=0.0",
    "train.batch_size=5",
    "train.max_epochs=100",
    "train.eval_every=1",
)
# Strengths that change nothing measurable: the baseline under other names, yet each
# candidate still trains as its own kind of member (penalty, decay or dropout paths).
TINY: Settings = {
    BASELINE: {},
    "l2": {"l2": 1e-9},
    "weight_decay": {"weight_decay": 1e-9},
    "dropout": {"dropout": 0.0005},
    "l1": {"l1": 1e-10},
}
# Each regularizer at a strength that lowered test_loss on a trial draw (for SGD without
# momentum l2 and weight_decay are the same update, hence the same numbers), and l2_strong,
# which flattens the net to the constant predictor: worse on validation and test.
MLP_SIGNAL: Settings = {
    BASELINE: {},
    "l2": {"l2": 0.01},
    "weight_decay": {"weight_decay": 0.01},
    "dropout": {"dropout": 0.3},
    "early_stopping": {"patience": 10},
    "l2_strong": {"l2": 1.0},
}
LINEAR_SIGNAL: Settings = {
    BASELINE: {},
    "weight_decay": {"weight_decay": 3.0},
    "l2": {"l2": 6.0},
    "weight_decay_weak": {"weight_decay": 0.01},
}


@dataclass(frozen=True)
class Scenario:
    """One calibration scenario: a regsearch run per draw with fixed candidates."""

    name: str
    truth: Literal["null", "signal"]
    overrides: tuple[str, ...]
    settings: Settings = field(default_factory=dict)
    final_seeds: int = 3 * BLOCK  # B blocks of BLOCK seeds per draw
    draws: int = 8  # default draws (--draws overrides every scenario's)
    # > 0 (null_seeds): per draw, this many arrangements of 1 + NULL_CANDIDATES of its blocks
    # as the baseline and null1..null4; 0: each block is one replication.
    arrangements: int = 0

    @property
    def blocks(self) -> int:
        return self.final_seeds // BLOCK

    @property
    def reps_per_draw(self) -> int:
        return self.arrangements or self.blocks

    def design(self, draws: int) -> str:
        """``"42 replications = 7 draws × 6 arrangements of 5 of its 6 seed blocks"``."""
        n = draws * self.reps_per_draw
        if self.arrangements:
            per = (
                f"{self.arrangements} arrangements of {1 + NULL_CANDIDATES} of its "
                f"{self.blocks} seed blocks"
            )
        else:
            per = f"{self.blocks} seed blocks of {BLOCK} seeds"
        return f"{n} replications = {draws} draws × {per}"


MOONS_NULL = (*MOONS_MLP, "task.n_samples=5100", "search.cv=5", "search.final_cv=10")
# 100 train+val rows and a 20,000-point test set, which stands for the truth.
MOONS_SIGNAL = (*MOONS_MLP, "task.n_samples=20100", "search.cv=5")
# One draw measured, on this 2-core machine with a test run beside it: 141 s (null_tiny: five
# kinds of member, trained as separate stacks; 825 members), 45 s (null_seeds: one kind, 330),
# 134 s (signal_mlp, 540), 241 s (signal_mlp_cv10, 990) and 40 s (signal_linear, 660). The
# default draws put the null scenarios at 42 replications and signal_mlp at 24 (~70 minutes
# of stage 1 here); signal_linear (every rule says clear on every replication) and
# signal_mlp_cv10 (the costliest) were cut to fit. `--draws 8` runs 8 of each (~85 minutes).
SCENARIOS = (
    Scenario("null_tiny", "null", MOONS_NULL, TINY, draws=14),
    # The baseline alone on 30 seeds; each replication relabels 5 of its 6 blocks into 5
    # candidates of 5 seeds (see relabel).
    Scenario(
        "null_seeds",
        "null",
        MOONS_NULL,
        {BASELINE: {}},
        final_seeds=6 * BLOCK,
        draws=7,
        arrangements=6,
    ),
    Scenario("signal_mlp", "signal", (*MOONS_SIGNAL, "search.final_cv=5"), MLP_SIGNAL, draws=8),
    Scenario(
        "signal_mlp_cv10", "signal", (*MOONS_SIGNAL, "search.final_cv=10"), MLP_SIGNAL, draws=3
    ),
    Scenario(
        "signal_linear",
        "signal",
        (*D2L_LINEAR, "search.cv=5", "search.final_cv=10"),
        LINEAR_SIGNAL,
        draws=1,
    ),
)


# --------------------------------------------------------------------------- stage 1: generate


def flow(settings: Settings) -> str:
    """``{baseline: {}, l2: {l2: 1e-09}}``: the settings as one Hydra override value."""
    inner = (
        f"{name}: {{{', '.join(f'{k}: {v!r}' for k, v in values.items())}}}"
        for name, values in settings.items()
    )
    return "{" + ", ".join(inner) + "}"


def run_overrides(scenario: Scenario, draw: int) -> list[str]:
    """The regsearch overrides of one draw (``paths.root`` comes separately)."""
    return [
        "+sweep=baseline",  # a preset that searches nothing; the settings are the candidates
        f"sweep.name=calib_{scenario.name}",
        *scenario.overrides,
        f"+sweep.settings={flow(scenario.settings)}",
        f"sweep.final_seeds={scenario.final_seeds}",
        f"task.data_seed={draw}",
        f"seed={SEED_STRIDE * draw}",
        "tracking=none",
        "report=false",
    ]


def cache_paths(cache: Path, scenario: str, draw: int) -> tuple[Path, Path]:
    """(trials CSV, metadata JSON) of one draw; the JSON is written last."""
    stem = cache / scenario / f"draw{draw:03d}"
    return stem.with_suffix(".csv"), stem.with_suffix(".json")


def is_cached(cache: Path, scenario: Scenario, draw: int) -> bool:
    """True when the draw is on disk and was generated with today's overrides."""
    _, meta_path = cache_paths(cache, scenario.name, draw)
    if not meta_path.exists():
        return False
    return json.loads(meta_path.read_text()).get("overrides") == run_overrides(scenario, draw)


def generate(cache: Path, scenario: Scenario, draw: int) -> float:
    """Train one draw into the cache; returns its wall seconds."""
    overrides = run_overrides(scenario, draw)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="calibration-") as root:
        result = regsearch.run(*overrides, root=root)
    wall = time.perf_counter() - start
    csv_path, meta_path = cache_paths(cache, scenario.name, draw)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    result.trials.to_csv(csv_path, index=False)
    meta = {k: result.summary.get(k) for k in SUMMARY_KEYS}
    meta |= {"overrides": overrides, "wall_s": round(wall, 2)}
    # Written last and atomically: its presence means the CSV beside it is complete.
    tmp = meta_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(meta_path)
    return wall


def generate_all(cache: Path, scenarios: Sequence[Scenario], draws: int | None) -> float:
    """Stage 1: every missing draw, one after another; returns the wall seconds."""
    start = time.perf_counter()
    todo = [(s, r) for s in scenarios for r in range(draws or s.draws)]
    missing = [(s, r) for s, r in todo if not is_cached(cache, s, r)]
    print(f"stage 1: {len(todo) - len(missing)} of {len(todo)} runs cached in {cache}")
    for i, (scenario, draw) in enumerate(missing, 1):
        wall = generate(cache, scenario, draw)
        print(f"  [{i}/{len(missing)}] {scenario.name} draw {draw}: {wall:.1f} s", flush=True)
    return time.perf_counter() - start


def wall_per_draw(cache: Path, scenarios: Sequence[Scenario], draws: int | None) -> list[list[str]]:
    """Per scenario: cached draws, their mean/min/max and total training wall time (as each
    was measured when generated, so a partly cached run still shows the full cost)."""
    rows, total = [], 0.0
    for scenario in scenarios:
        found = cached_draws(cache, scenario, draws or scenario.draws)
        walls = [float(load_meta(cache, scenario.name, r)["wall_s"]) for r in found]
        if walls:
            total += sum(walls)
            span = f"{min(walls):.1f}–{max(walls):.1f}"
            mean = sum(walls) / len(walls)
            reps = str(len(walls) * scenario.reps_per_draw)
            cells = [f"{mean:.1f}", span, f"{sum(walls):.0f}"]
            rows.append([scenario.name, str(len(walls)), reps, *cells])
    return [*rows, ["all", "", "", "", "", f"{total:.0f}"]]


# --------------------------------------------------------------------------- stage 2: evaluate


def seed_blocks(trials: pd.DataFrame, draw: int) -> pd.Series:
    """The seed block (0, 1, ...) of every row of a draw's final phase."""
    first = SEED_STRIDE * draw + FINAL_SEED_OFFSET
    return (trials["seed"].astype(int) - first) // BLOCK


def relabel(trials: pd.DataFrame, blocks: pd.Series, order: Sequence[int]) -> pd.DataFrame:
    """The baseline's seed blocks ``order`` as candidates: block ``order[0]`` stays
    ``baseline``, block ``order[i]`` becomes ``null<i>`` with its seed j renamed to seed j of
    the baseline's block (same fold), so the comparison pairs them. The fold partition is
    drawn from the seed (regsearch/tasks/folds.py), so a relabelled pair was validated on
    different partitions: for a null that is fine, both sides being exchangeable draws of the
    same training noise."""
    step = int(trials["trial"].max()) + 1
    parts = []
    for i, b in enumerate(order):
        part = trials.loc[blocks == b].copy()
        part["seed"] = part["seed"] - BLOCK * (b - order[0])
        part["family"] = BASELINE if i == 0 else f"null{i}"
        part["trial"] = part["trial"] + i * step  # one trial number per name
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def arrangements(scenario: Scenario, draw: int) -> list[list[int]]:
    """null_seeds: the block orders of a draw's replications. Arrangement a leaves out block
    a mod B (so every block sits out equally often) and orders the rest at random, seeded by
    the draw: its first block is the baseline."""
    rng = np.random.default_rng([ARRANGEMENT_SEED, draw])
    out = []
    for a in range(scenario.arrangements):
        rest = [b for b in range(scenario.blocks) if b != a % scenario.blocks]
        out.append([int(b) for b in rng.permutation(rest)[: 1 + NULL_CANDIDATES]])
    return out


def replications(
    cache: Path, scenario: Scenario, draw: int
) -> tuple[list[tuple[str, pd.DataFrame]], dict[str, Any]]:
    """A cached draw's replications as (label, trials) — label ``b1`` for seed block 1, or
    ``3-0-5-1-4`` for an arrangement — and its summary keys."""
    trials = pd.read_csv(cache_paths(cache, scenario.name, draw)[0])
    trials = trials.loc[trials["phase"] == "final"]
    blocks = seed_blocks(trials, draw)
    if scenario.arrangements:
        reps = [
            ("-".join(map(str, order)), relabel(trials, blocks, order))
            for order in arrangements(scenario, draw)
        ]
    else:
        reps = [(f"b{b}", trials.loc[blocks == b]) for b in range(scenario.blocks)]
    return reps, load_meta(cache, scenario.name, draw)


def load_meta(cache: Path, scenario: str, draw: int) -> dict[str, Any]:
    """The cached summary keys, overrides and wall time of one draw."""
    return dict(json.loads(cache_paths(cache, scenario, draw)[1].read_text()))


def test_truth(trials: pd.DataFrame) -> pd.DataFrame:
    """Per candidate, the mean test metrics of its refits (final rows with fold −1): each was
    trained on the whole pool and scored on the large test set. Fold rows' test columns are
    not used (they are not what a user would deploy)."""
    refit = trials[(trials["phase"] == "final") & (trials["fold"] == -1)]
    refit = refit[refit["state"] == "complete"]
    cols = [c for c in ("test_loss", "test_acc") if c in refit and refit[c].notna().any()]
    return refit.groupby("family")[cols].mean()


Rules = Mapping[str, Any]  # rule name → DecisionRule (None: the current compare, no rule)


def candidate_rules() -> Rules:
    """The rules to score, or the current ``compare`` alone before rules exist."""
    rules = getattr(comparison, "CANDIDATE_RULES", None)
    if rules is None:
        print("note: regsearch.comparison has no CANDIDATE_RULES; scoring compare() as it is")
        return {"compare() as is": None}
    return dict(rules)


def decide(trials: pd.DataFrame, meta: Mapping[str, Any], rule: Any) -> tuple[str, str | None]:
    """(tier, recommended candidate or None) of one rule on one replication."""
    extra = {} if rule is None else {"rule": rule}
    result = comparison.compare(
        trials,
        meta["kind"],
        metric=meta["metric"],
        cv=meta["cv"],
        constant=meta["constant_predictor"],
        **extra,
    )
    if result is None:
        return "none", None
    if not hasattr(result, "tier"):  # before graded verdicts: a winner is a clear claim
        return ("clear" if result.winner else "undecided"), result.winner
    return result.tier, result.recommended


def gains(truth: pd.DataFrame, recommended: str | None) -> dict[str, float]:
    """The recommendation's test gain over the baseline and the best gain available (≥ 0);
    keeping the baseline gains 0. Losses gain by falling, accuracies by rising."""
    means = {str(k): {str(c): float(v) for c, v in m.items()} for k, m in truth.iterrows()}
    base = means[BASELINE]
    pick = means[recommended] if recommended is not None else base
    losses = [m["test_loss"] for m in means.values()]
    out = {
        "gain_test_loss": base["test_loss"] - pick["test_loss"],
        "best_test_loss": max(0.0, base["test_loss"] - min(losses)),
    }
    if "test_acc" in truth:
        accs = [m["test_acc"] for m in means.values()]
        out["gain_test_acc"] = pick["test_acc"] - base["test_acc"]
        out["best_test_acc"] = max(0.0, max(accs) - base["test_acc"])
    return out


def evaluate_draw(
    cache: Path, scenario: Scenario, draw: int, rules: Rules
) -> tuple[list[dict[str, Any]], list[pd.DataFrame]]:
    """One row per (replication, rule) of one draw, and each replication's truth."""
    reps, meta = replications(cache, scenario, draw)
    rows, truths = [], []
    for label, trials in reps:
        truth = test_truth(trials)
        truths.append(truth)
        for name, rule in rules.items():
            tier, recommended = decide(trials, meta, rule)
            rows.append(
                {
                    "scenario": scenario.name,
                    "draw": draw,
                    "replication": label,
                    "rule": name,
                    "tier": tier,
                    "recommended": recommended,
                    **gains(truth, recommended),
                }
            )
    return rows, truths


def cached_draws(cache: Path, scenario: Scenario, draws: int) -> list[int]:
    """The draws 0..draws−1 of ``scenario`` that are on disk with today's overrides."""
    found = sorted(int(p.stem[4:]) for p in (cache / scenario.name).glob("draw*.json"))
    return [r for r in found if r < draws and is_cached(cache, scenario, r)]


# --------------------------------------------------------------------------- tables


def upper_bound(k: int, n: int) -> float:
    """One-sided Clopper–Pearson upper confidence bound (CONFIDENCE) of a k/n proportion."""
    return 1.0 if k >= n else float(stats.beta.ppf(CONFIDENCE, k + 1, n - k))


def share(hits: pd.Series) -> str:
    """``"1/40 (2.5%; ≤ 11.3%)"``: the count, its share and its upper confidence bound."""
    k, n = int(hits.sum()), len(hits)
    return f"{k}/{n} ({100 * k / n:.1f}%; ≤ {100 * upper_bound(k, n):.1f}%)"


def captured(rows: pd.DataFrame, metric: str) -> str:
    """Σ gain of the recommendations / Σ best gain available, as a percentage."""
    if f"gain_{metric}" not in rows or rows[f"gain_{metric}"].isna().all():
        return "–"
    best = rows[f"best_{metric}"].sum()
    return "–" if best <= 0 else f"{100 * rows[f'gain_{metric}'].sum() / best:.0f}%"


def picks(rows: pd.DataFrame) -> str:
    """``"l2 12, dropout 7, (baseline) 5"``: how often each candidate was recommended."""
    counts = rows["recommended"].fillna(f"({BASELINE})").value_counts()
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def null_row(rule: str, rows: pd.DataFrame) -> list[str]:
    recommends = rows["recommended"].notna()
    return [
        rule,
        str(len(rows)),
        share((rows["tier"] == "clear") & recommends),
        share(rows["tier"] == "likely"),
        share(recommends),
    ]


def signal_row(rule: str, rows: pd.DataFrame) -> list[str]:
    tiers = [str(int((rows["tier"] == t).sum())) for t in TIERS]
    worse = rows["recommended"].notna() & (rows["gain_test_loss"] < 0)
    return [
        rule,
        str(len(rows)),
        *tiers,
        captured(rows, "test_loss"),
        captured(rows, "test_acc"),
        str(int(worse.sum())),
        picks(rows),
    ]


BOUND = f"k/n (%; one-sided {100 * CONFIDENCE:.0f}% upper bound)"
NULL_HEADER = [
    "rule",
    "reps",
    f"false clear (≤ 5%): {BOUND}",
    "likely (≤ 10%)",
    "any recommendation",
]
SIGNAL_HEADER = [
    "rule",
    "reps",
    *TIERS,
    "captured test_loss (≥ 90%)",
    "captured test_acc",
    "rec. worse on test_loss (0)",
    "recommended (times)",
]


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def truth_line(truths: Sequence[pd.DataFrame]) -> str:
    """Per candidate: its mean test metrics over the replications and, for a candidate, in
    how many it beat the baseline on test_loss (is the signal there, is the harmful one
    harmful?)."""
    means = pd.concat(truths).groupby(level=0, sort=False).mean()
    wins = [t["test_loss"] < t.loc[BASELINE, "test_loss"] for t in truths]
    better = pd.concat(wins).groupby(level=0).sum()
    cols = list(means.columns)
    parts = []
    for name in [BASELINE, *(n for n in means.index if n != BASELINE)]:
        values = " / ".join(f"{means.loc[name, c]:.4f}" for c in cols)
        beats = "" if name == BASELINE else f" (beats {better[name]}/{len(truths)})"
        parts.append(f"{name} {values}{beats}")
    head = f"Truth (mean {' / '.join(cols)} of the refits over {len(truths)} replications; "
    head += "how often a candidate beats the baseline on test_loss): "
    return head + "; ".join(parts) + "."


def scenario_tables(
    scenario: Scenario, rows: pd.DataFrame, truths: Sequence[pd.DataFrame], draws: int
) -> str:
    """The scenario's markdown section: its design, one row per rule, and its truth."""
    make: Callable[[str, pd.DataFrame], list[str]]
    header, make = (
        (NULL_HEADER, null_row) if scenario.truth == "null" else (SIGNAL_HEADER, signal_row)
    )
    body = [make(str(rule), part) for rule, part in rows.groupby("rule", sort=False)]
    return "\n".join(
        [
            f"### {scenario.name} ({scenario.truth}): {scenario.design(draws)}",
            "",
            markdown(header, body),
            "",
            truth_line(truths),
        ]
    )


# --------------------------------------------------------------------------- main


def evaluate_all(cache: Path, scenarios: Sequence[Scenario], draws: int | None) -> float:
    """Stage 2: score every rule on every cached replication; print and save the rows."""
    start = time.perf_counter()
    rules = candidate_rules()
    all_rows = []
    for scenario in scenarios:
        found = cached_draws(cache, scenario, draws or scenario.draws)
        if not found:
            print(f"\n{scenario.name}: nothing cached")
            continue
        rows, truths = [], []
        for draw in found:
            draw_rows, draw_truths = evaluate_draw(cache, scenario, draw, rules)
            rows += draw_rows
            truths += draw_truths
        frame = pd.DataFrame(rows)
        print("\n" + scenario_tables(scenario, frame, truths, len(found)))
        all_rows.append(frame)
    if all_rows:
        print(f"\nper-replication rows: {save_rows(cache, pd.concat(all_rows))}")
    return time.perf_counter() - start


def save_rows(cache: Path, rows: pd.DataFrame) -> Path:
    """Write the rows into ``<cache>/calibration_rows.csv``, keeping the rows of scenarios
    not evaluated this time (an ``--only`` run updates its own scenarios only)."""
    out = cache / "calibration_rows.csv"
    if out.exists():
        kept = pd.read_csv(out)
        if "draw" in kept:  # rows of an older layout (one run per replication) are dropped
            rows = pd.concat([kept[~kept["scenario"].isin(rows["scenario"])], rows])
    rows.to_csv(out, index=False)
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--draws", type=int, help="data draws (regsearch runs) per scenario (default: its own)"
    )
    parser.add_argument(
        "--only", help="comma-separated scenarios: " + ", ".join(s.name for s in SCENARIOS)
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    return parser.parse_args()


def pick(only: str | None) -> list[Scenario]:
    if not only:
        return list(SCENARIOS)
    names = only.split(",")
    unknown = sorted(set(names) - {s.name for s in SCENARIOS})
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; have {[s.name for s in SCENARIOS]}")
    return [s for s in SCENARIOS if s.name in names]


def main() -> None:
    args = parse_args()
    scenarios = pick(args.only)
    gen_s = generate_all(args.cache, scenarios, args.draws)
    print("\nTraining wall time per draw (one regsearch run, s):\n")
    header = ["scenario", "draws", "replications", "mean", "range", "total"]
    print(markdown(header, wall_per_draw(args.cache, scenarios, args.draws)))
    eval_s = evaluate_all(args.cache, scenarios, args.draws)
    print(f"\nstage 1 (generate): {gen_s:.0f} s; stage 2 (evaluate): {eval_s:.1f} s")


if __name__ == "__main__":
    main()
