"""The Python API: run a sweep from a notebook or a test exactly as the command line would.

Example:
    >>> import regsearch
    >>> result = regsearch.run("+sweep=l2", "task=wine", "search.n_trials=4",
    ...                        root="/tmp/sweeps")  # doctest: +SKIP
    >>> result.verdict  # doctest: +SKIP
    'No regularizer beat baseline on val_loss ...'
    >>> final = result.trials[result.trials["phase"] == "final"]  # doctest: +SKIP
    >>> final.groupby("family")["val_loss"].mean()  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from regsearch.compose import compose_checked
from regsearch.config import ConfigError
from regsearch.outputs import SweepResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["run"]


def run(
    *overrides: str,
    root: str | Path | None = None,
    progress: bool = False,
    config_dir: str | Path | None = None,
    data: pd.DataFrame | Any = None,
    target: str | None = None,
) -> SweepResult:
    """Compose ``overrides`` like ``python -m regsearch``, validate them and run the sweep here.

    Args:
        overrides: Command-line overrides, e.g. ``"+sweep=dropout"``, ``"task=wine"``,
            ``"search.n_trials=8"``.
        root: Output root (``paths.root``); the default is ``sweeps`` in the working directory.
        progress: Show the progress bar (off by default in notebooks and tests).
        config_dir: A folder of your own presets, searched before the packaged ones, as the
            command line's ``--config-dir``: ``<config_dir>/sweep/my_preset.yaml`` is
            ``"+sweep=my_preset"``.
        data: The data to sweep on, stored under ``<root>/data/`` and named ``task.name``:
            a DataFrame with ``target`` its column to predict (``task=csv``, see
            :mod:`regsearch.frames`), or arrays: ``(x, y)`` numpy arrays or torch tensors,
            a dict that adds predefined ``x_val``/``y_val``/``x_test``/``y_test``, or a
            torch ``Dataset`` of ``(x, y)`` items (``task=arrays``, one example's shape is
            ``x.shape[1:]``; see :mod:`regsearch.arrays`).
        target: The column of a DataFrame ``data`` to predict.

    Returns:
        The run folder, the trials and curves tables, the summary and the comparison.

    Raises:
        ConfigError: Bad input, with the same one-line message the command line prints;
            nothing has been written then. ``+experiment=suite`` is refused here: a suite
            returns a different result, from :func:`regsearch.suite.run`.
        KeyboardInterrupt: Interrupted; both stores are consistent and can be resumed.
    """
    from regsearch.arrays import stored_arrays
    from regsearch.frames import stored_frame
    from regsearch.sweep import run_sweep

    args = list(overrides)
    if root is not None:
        args.append(f"paths.root={root}")
    if not any(a.startswith("progress=") for a in args):
        args.append(f"progress={str(progress).lower()}")
    dirs = [config_dir] if config_dir is not None else []
    # A table (or no data: the overrides as they are) is a csv task; anything else arrays.
    table = data is None or target is not None or _is_frame(data)
    stored = stored_frame(data, target, args, dirs) if table else stored_arrays(data, args, dirs)
    with stored as args:
        typed, yaml_text = compose_checked(args, config_dirs=dirs)
        if typed.suite is not None:
            raise ConfigError(
                "+experiment=suite: a benchmark suite runs with regsearch.suite.run(...); "
                "regsearch.run runs one sweep"
            )
        return run_sweep(typed, yaml_text)


def _is_frame(data: object) -> bool:
    import pandas as pd

    return isinstance(data, pd.DataFrame)
