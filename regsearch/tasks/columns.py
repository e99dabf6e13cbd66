"""Which columns of a user's table (``task=csv``) are features, and the data set's name.

``task.features`` keeps only the columns it names, ``task.drop`` removes the ones it names;
both are checked against the file's header. Without ``task.features``, columns that look like
row identifiers are left out with a log line: an integer row id would let the model learn the
file's order, and a text column with a different value in every row becomes one one-hot
feature per row, seen by one training row each.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from regsearch.config import TASK_SCHEMAS, ConfigError, CsvTask
from regsearch.tasks.bundle import LeftOut

__all__ = ["MIN_ID_ROWS", "columns_list", "dataset_name", "id_like", "select_columns"]

#: Tables with fewer rows keep every column: a few distinct values prove nothing there.
MIN_ID_ROWS = 20
_SHOW_COLUMNS = 15  # columns listed in "no such column" messages
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz")

log = logging.getLogger(__name__)


def columns_list(columns: pd.Index | list[str]) -> str:
    """The first few column names, quoted, for one-line messages."""
    names = [str(c) for c in columns]
    shown = ", ".join(repr(c) for c in names[:_SHOW_COLUMNS])
    more = len(names) - _SHOW_COLUMNS
    return shown + (f", ... (+{more} more)" if more > 0 else "")


def dataset_name(cfg: CsvTask) -> str:
    """The name titles, the results folder and the MLflow experiment use for this table.

    ``task.name`` when the user set it; otherwise (``csv``) the file's stem with characters
    other than letters, digits, ``_`` and ``-`` replaced, and ``_csv`` added to a built-in
    task's name (a ``wine.csv`` must not share the ``wine`` task's folder and studies).

    Raises:
        ConfigError: A ``task.name`` a folder cannot carry, or a built-in task's name.

    Example:
        >>> dataset_name(CsvTask(name="csv", path="data/Titanic train.csv.gz"))
        'Titanic_train'
    """
    if cfg.name != "csv":
        if not _NAME.fullmatch(cfg.name):
            raise ConfigError(
                f"task.name={cfg.name!r}: names the results folder and the MLflow experiment; "
                "use letters, digits, _ and - only"
            )
        if cfg.name in TASK_SCHEMAS:
            raise ConfigError(
                f"task.name={cfg.name!r}: a built-in task's name; name your table something "
                f"else (e.g. task.name={cfg.name}_csv)"
            )
        return cfg.name
    stem = Path(cfg.path).name
    for suffix in _COMPRESSED:
        stem = stem.removesuffix(suffix)
    stem = Path(stem).stem
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or "csv"
    return f"{name}_csv" if name in TASK_SCHEMAS and name != "csv" else name


def id_like(column: pd.Series) -> str | None:
    """Why ``column`` looks like a row identifier, or None.

    Unique integers that count the rows (a consecutive run, or sorted in file order) or text
    with a different value in every row, without gaps, in a table of at least
    :data:`MIN_ID_ROWS` rows. A measured integer (a price, a count) is rarely both unique and
    in order, so it stays.

    Example:
        >>> id_like(pd.Series(range(1, 31))), id_like(pd.Series([5, 2] * 15))
        ('looks like a row id (unique integers)', None)
    """
    if len(column) < MIN_ID_ROWS or column.isna().any() or not column.is_unique:
        return None
    if pd.api.types.is_bool_dtype(column):
        return None
    if pd.api.types.is_integer_dtype(column):
        counting = column.max() - column.min() == len(column) - 1
        ordered = column.is_monotonic_increasing or column.is_monotonic_decreasing
        return "looks like a row id (unique integers)" if counting or ordered else None
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return None
    return "looks like an ID or free text (a different value in every row)"


def _check_names(cfg: CsvTask, key: str, names: list[str], columns: pd.Index) -> None:
    """Every name in ``task.<key>`` is a column of the file other than the target."""
    value = f"task.{key}={names!r}"
    for name in names:
        if name == cfg.target:
            use = "left out" if key == "drop" else "a feature"
            raise ConfigError(
                f"{value}: {name!r} is the target (task.target); it is never {use}, "
                "remove it from the list"
            )
        if name not in columns:
            raise ConfigError(
                f"{value}: no column {name!r} in {cfg.path!r}; columns: {columns_list(columns)}"
            )


def _hydra_list(names: list[str]) -> str:
    """``[a,b,'home town']``: names as a Hydra list override takes them."""
    plain = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
    quoted = (n if plain.fullmatch(n) else "'" + n.replace("'", "\\'") + "'" for n in names)
    return f"[{','.join(quoted)}]"


def _leave_out_ids(cfg: CsvTask, features: pd.DataFrame) -> list[LeftOut]:
    """The ID-like columns of ``features``, each announced in one log line."""
    found = [LeftOut(str(c), why) for c in features.columns if (why := id_like(features[c]))]
    ids = {entry.name for entry in found}
    for entry in found:
        # The list that keeps this column and every column that is a feature already.
        kept = [str(c) for c in features.columns if c not in ids or c == entry.name]
        keep = _hydra_list(kept)
        if len(kept) > _SHOW_COLUMNS:
            keep = f"[<the columns to use>,{_hydra_list([entry.name])[1:-1]}]"
        log.warning(
            "task.path=%r: column %r %s and is left out; keep it with task.features=%s",
            cfg.path,
            entry.name,
            entry.why,
            keep,
        )
    return found


def select_columns(cfg: CsvTask, table: pd.DataFrame) -> tuple[pd.DataFrame, tuple[LeftOut, ...]]:
    """The feature columns of ``table`` (the target never among them) and those left out.

    ``task.features`` (when given) keeps only its columns, in the file's order, and no
    column is then left out as ID-like; ``task.drop`` removes its columns.

    Raises:
        ConfigError: A name in ``task.features`` or ``task.drop`` that is not a column or is
            the target, or one column in both lists.
    """
    columns = table.columns.map(str)
    table = table.set_axis(columns, axis=1)
    _check_names(cfg, "features", list(cfg.features), columns)
    _check_names(cfg, "drop", list(cfg.drop), columns)
    both = [name for name in cfg.drop if name in cfg.features]
    if both:
        raise ConfigError(
            f"task.drop={list(cfg.drop)!r}: {both[0]!r} is also in task.features; "
            "name it in one list only"
        )
    left_out: list[LeftOut] = []
    features = table.drop(columns=[cfg.target])
    if cfg.features:
        unused = [c for c in features.columns if c not in cfg.features]
        left_out += [LeftOut(c, "not in task.features") for c in unused]
        features = features.drop(columns=unused)
    else:
        left_out += [LeftOut(c, "task.drop") for c in features.columns if c in cfg.drop]
        features = features.drop(columns=list(cfg.drop))
        ids = _leave_out_ids(cfg, features)
        left_out += ids
        features = features.drop(columns=[entry.name for entry in ids])
    return features, tuple(left_out)
