"""Benchmark suites: the compare sweep on many real data sets, then statistics across them.

``python -m regsearch +experiment=suite`` runs the compare preset on each KEEL data set of
``suite.datasets`` with one budget (resumable data set by data set), and writes a suite folder
(``${paths.root}/suite-<name>/``): each data set's usual run folder, ``suite.json`` (what is
done), ``records.csv`` (each data set's comparison records) and ``report.html``: the verdict
across data sets (wins/ties/losses, median effects, Wilcoxon + Holm), a critical-difference
diagram and a heat map of effects (docs/comparison.md §8).

Module map: :mod:`.datasets` (named lists, data set facts), :mod:`.state` (the folder's
memory), :mod:`.plan` (what is checked before any write), :mod:`.runner` (the loop),
:mod:`.stats` (statistics across data sets), :mod:`.verdict` (sentences), :mod:`.figures`
and :mod:`.report` (the HTML page), :mod:`.tracking` (MLflow), :mod:`.cli` (the command
line's exit codes).

Example:
    >>> from regsearch import suite
    >>> result = suite.run("suite.datasets=[sonar,pima]", root="sweeps")  # doctest: +SKIP
    >>> result.stats.family("dropout").wtl  # doctest: +SKIP
    (1, 1, 0)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regsearch.suite.runner import SuiteResult

__all__ = ["run"]


def run(
    *overrides: str,
    root: str | Path | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> SuiteResult:
    """Compose ``overrides`` like ``python -m regsearch +experiment=suite`` and run the suite.

    Args:
        overrides: Command-line overrides, e.g. ``"suite.datasets=[sonar,pima]"``,
            ``"suite.n_trials=4"``; ``+experiment=suite`` is added when no experiment is given.
        root: Output root (``paths.root``); the default is ``sweeps`` in the working directory.
        progress: Show each data set's progress bar over trials.
        echo: Where the per-data-set progress lines go (default: printed).

    Returns:
        The suite folder, its records, statistics and report.

    Raises:
        ConfigError: Bad input (one line, as the command line prints it); nothing written.
        KeyboardInterrupt: Interrupted; the same call resumes.
    """
    from regsearch.compose import compose_checked
    from regsearch.suite.runner import run_suite

    args = list(overrides)
    if not any(a.lstrip("+").startswith("experiment=") for a in args):
        args.insert(0, "+experiment=suite")
    if root is not None:
        args.append(f"paths.root={root}")
    if not any(a.startswith("progress=") for a in args):
        args.append(f"progress={str(progress).lower()}")
    typed, yaml_text = compose_checked(args)
    return run_suite(typed, yaml_text, echo=echo)
