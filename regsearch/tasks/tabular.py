"""The ``csv`` task: a user's own table (CSV or Parquet) with one column to predict.

Rows are split before anything is learned from the data, so imputation statistics and
standardization come from the training rows only. Classification labels are the target's
distinct values in sorted order, mapped to 0..k-1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from regsearch.config import ConfigError, CsvTask
from regsearch.tasks.bundle import TaskData, make_bundle
from regsearch.tasks.sklearn_sets import three_way_split

__all__ = ["MAX_AUTO_CLASSES", "detect_kind", "load_csv", "read_table"]

#: kind=auto treats an integer target with at most this many distinct values as classes.
MAX_AUTO_CLASSES = 20
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_SHOW_COLUMNS = 15  # columns listed in "no such column" messages


def read_table(path: str) -> pd.DataFrame:
    """Read a CSV (``pandas.read_csv``) or Parquet (``pandas.read_parquet``) file.

    Args:
        path: File path; the suffix picks the reader.

    Returns:
        The table, with at least one row.

    Raises:
        ConfigError: Missing, unreadable or empty file, or an unknown suffix.

    Example:
        >>> read_table("examples/houses.csv").shape  # doctest: +SKIP
        (506, 14)
    """
    key = f"task.path={path!r}"
    file = Path(path)
    if not path or not file.is_file():
        raise ConfigError(f"{key}: no such file")
    name = file.name.lower()
    if not name.endswith(_CSV_SUFFIXES + _PARQUET_SUFFIXES):
        allowed = ", ".join(_CSV_SUFFIXES + _PARQUET_SUFFIXES)
        raise ConfigError(f"{key}: unknown file type; allowed: {allowed}")
    try:
        df = pd.read_parquet(file) if name.endswith(_PARQUET_SUFFIXES) else pd.read_csv(file)
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{key}: empty file") from None
    except (OSError, ValueError, pd.errors.ParserError) as err:
        # pyarrow's ArrowInvalid and UnicodeDecodeError are ValueErrors.
        reason = " ".join(str(err).split())[:200]
        raise ConfigError(f"{key}: cannot read file ({type(err).__name__}: {reason})") from None
    if len(df) == 0:
        raise ConfigError(f"{key}: empty file (no data rows)")
    return df


def detect_kind(target: pd.Series) -> str:
    """Guess the task kind of a target column without missing values.

    Text, categorical and boolean targets are classes; so are integer values (stored as int
    or as whole floats) with at most :data:`MAX_AUTO_CLASSES` distinct values. Anything else
    is regression.

    Example:
        >>> detect_kind(pd.Series([0, 1, 1, 2])), detect_kind(pd.Series([0.5, 1.25, 3.0]))
        ('classification', 'regression')
    """
    if pd.api.types.is_bool_dtype(target) or not pd.api.types.is_numeric_dtype(target):
        return "classification"
    values = target.to_numpy(dtype=np.float64)
    whole = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    return "classification" if whole and target.nunique() <= MAX_AUTO_CLASSES else "regression"


def _columns_list(columns: pd.Index) -> str:
    names = [str(c) for c in columns]
    shown = ", ".join(repr(c) for c in names[:_SHOW_COLUMNS])
    more = len(names) - _SHOW_COLUMNS
    return shown + (f", ... (+{more} more)" if more > 0 else "")


def _encode_target(cfg: CsvTask, target: pd.Series) -> tuple[str, np.ndarray]:
    """(kind, y): classes become 0..k-1 in sorted order of their values."""
    key = f"task.target={cfg.target!r}"
    n_missing = int(target.isna().sum())
    if n_missing:
        raise ConfigError(
            f"{key}: {n_missing} rows of {cfg.path!r} have no target value; drop or fill them"
        )
    if target.nunique() < 2:
        raise ConfigError(f"{key}: the target is constant ({target.iloc[0]!r}); nothing to learn")
    kind = detect_kind(target) if cfg.kind == "auto" else cfg.kind
    if kind == "regression":
        if pd.api.types.is_bool_dtype(target) or not pd.api.types.is_numeric_dtype(target):
            raise ConfigError(
                f"task.kind='regression': target {cfg.target!r} is not numeric "
                f"(dtype {target.dtype}); use task.kind=classification or auto"
            )
        return kind, target.to_numpy(dtype=np.float64)
    try:
        codes, _ = pd.factorize(target, sort=True)
    except TypeError:  # mixed types (e.g. numbers and text) do not sort; compare as text
        codes, _ = pd.factorize(target.astype(str), sort=True)
    return kind, np.asarray(codes, dtype=np.int64)


def _check_missing(cfg: CsvTask, features: pd.DataFrame) -> None:
    counts = features.isna().sum()
    counts = counts[counts > 0]
    if counts.empty:
        return
    if len(counts) == 1:
        detail = f"column {counts.index[0]!r} has {int(counts.iloc[0])} missing values"
    else:
        listed = ", ".join(f"{c!r} ({int(n)})" for c, n in counts.items())
        detail = f"columns {listed} have missing values"
    raise ConfigError(
        f"task.path={cfg.path!r}: {detail}; set task.impute=mean|median or clean the file"
    )


def _impute(cfg: CsvTask, features: pd.DataFrame, train: np.ndarray) -> pd.DataFrame:
    """Fill gaps with training-split statistics: mean/median for numbers, mode for text."""
    filled = features.copy()
    train_rows = features.iloc[train]
    for col in features.columns[features.isna().any()]:
        column = train_rows[col].dropna()
        if column.empty:
            raise ConfigError(
                f"task.path={cfg.path!r}: column {col!r} has no values in the training split "
                "to impute from; drop the column or clean the file"
            )
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if numeric:
            value = column.mean() if cfg.impute == "mean" else column.median()
        else:
            value = column.mode().iloc[0]
        filled[col] = features[col].fillna(value)
    return filled


def _encode_features(cfg: CsvTask, features: pd.DataFrame) -> pd.DataFrame:
    """One-hot text/categorical columns, booleans as 0/1, numbers as they are."""
    text = [
        c
        for c in features.columns
        if not pd.api.types.is_numeric_dtype(features[c])
        and not pd.api.types.is_bool_dtype(features[c])
        and not pd.api.types.is_datetime64_any_dtype(features[c])
    ]
    encoded = pd.get_dummies(features, columns=text, dtype=float) if text else features
    for col in encoded.columns:
        if not pd.api.types.is_numeric_dtype(encoded[col]) and not pd.api.types.is_bool_dtype(
            encoded[col]
        ):
            raise ConfigError(
                f"task.path={cfg.path!r}: column {col!r} has unsupported type "
                f"{encoded[col].dtype}; convert it to numbers or text"
            )
    return encoded.astype(np.float64)


def load_csv(cfg: CsvTask) -> TaskData:
    """Load a table, split it (test, then validation), impute and encode it.

    Args:
        cfg: File path, target column, kind (auto | classification | regression), imputation
            (none | mean | median), split fractions and seed, standardization.

    Returns:
        The bundle; feature names are the (one-hot expanded) column names. Class ``i`` is the
        ``i``-th smallest distinct target value.

    Raises:
        ConfigError: Bad file, unknown target column, missing values with ``impute=none``,
            missing or constant target, or no feature columns.

    Example:
        >>> cfg = CsvTask(name="csv", path="houses.csv", target="price")
        >>> load_csv(cfg).kind  # doctest: +SKIP
        'regression'
    """
    if cfg.kind not in ("auto", "classification", "regression"):
        raise ConfigError(f"task.kind={cfg.kind!r}: allowed: auto, classification, regression")
    if cfg.impute not in ("none", "mean", "median"):
        raise ConfigError(f"task.impute={cfg.impute!r}: allowed: none, mean, median")
    df = read_table(cfg.path)
    if cfg.target not in df.columns:
        raise ConfigError(
            f"task.target={cfg.target!r}: no such column in {cfg.path!r}; "
            f"columns: {_columns_list(df.columns)}"
        )
    kind, y = _encode_target(cfg, df[cfg.target])
    features = df.drop(columns=[cfg.target])
    if features.shape[1] == 0:
        raise ConfigError(f"task.path={cfg.path!r}: no feature columns besides the target")
    if len(df) < 3:
        raise ConfigError(f"task.path={cfg.path!r}: {len(df)} rows; need at least 3 to split")
    if cfg.impute == "none":
        _check_missing(cfg, features)
    train, val, test = three_way_split(len(df), cfg.test_fraction, cfg.val_fraction, cfg.split_seed)
    if cfg.impute != "none":
        features = _impute(cfg, features, train)
    encoded = _encode_features(cfg, features)
    x = encoded.to_numpy()
    parts = (("train", train), ("val", val), ("test", test))
    splits = {part: (x[idx], y[idx]) for part, idx in parts}
    names = [str(c) for c in encoded.columns]
    return make_bundle(
        cfg.name,
        kind,
        splits,
        standardize=cfg.standardize,
        feature_names=names,
        standardize_target=cfg.standardize_target,
    )
