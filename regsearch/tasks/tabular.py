"""The ``csv`` task: a user's own table (CSV or Parquet) with one column to predict.

Rows are split before anything is learned from the data: a scikit-learn ``ColumnTransformer``
(imputation, one-hot encoding of text columns) is fitted on the training rows only and then
transforms every split, so a category that appears only in validation or test rows adds no
feature (its rows get zeros in that column's one-hot block); standardization, too, uses the
training rows only (:func:`regsearch.tasks.bundle.make_bundle`, and per fold in
cross-validation). Classification labels are the target's distinct values in sorted order,
mapped to 0..k-1. Which columns are features (``task.features``, ``task.drop``, ID-like
columns left out) is :mod:`regsearch.tasks.columns`' business.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from regsearch.config import ConfigError, CsvTask
from regsearch.config.schema import CSV_WARN_LEVELS, IMPUTE, TASK_KINDS
from regsearch.tasks.bundle import InputColumn, TableRecord, TaskData
from regsearch.tasks.columns import columns_list, dataset_name, select_columns
from regsearch.tasks.sklearn_sets import bundle_table, split_rows

__all__ = ["MAX_AUTO_CLASSES", "detect_kind", "load_csv", "read_table"]

#: kind=auto treats an integer target with at most this many distinct values as classes.
MAX_AUTO_CLASSES = 20
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
#: Values beyond float32's range become inf in the tensors the engines train on.
_FLOAT32_MAX = float(np.finfo(np.float32).max)

log = logging.getLogger(__name__)


def read_table(path: str) -> pd.DataFrame:
    """Read a CSV (``pandas.read_csv``) or Parquet (``pandas.read_parquet``) file.

    Args:
        path: File path; the suffix picks the reader.

    Returns:
        The table, with at least one row.

    Raises:
        ConfigError: Missing, unreadable or empty file, an unknown suffix, or a column name
            used twice.

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
    parquet = name.endswith(_PARQUET_SUFFIXES)
    try:
        df = pd.read_parquet(file) if parquet else pd.read_csv(file)
        header = list(df.columns) if parquet else _csv_header(file)
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{key}: empty file") from None
    except (OSError, ValueError, pd.errors.ParserError) as err:
        # pyarrow's ArrowInvalid and UnicodeDecodeError are ValueErrors.
        reason = " ".join(str(err).split())[:200]
        raise ConfigError(f"{key}: cannot read file ({type(err).__name__}: {reason})") from None
    if len(df) == 0:
        raise ConfigError(f"{key}: empty file (no data rows)")
    _check_unique(key, header)
    return df


def _csv_header(file: Path) -> list[str]:
    """The header as written: ``read_csv`` renames a repeated ``y`` to ``y.1`` (and pandas
    has no option left to stop it), which would hide a second target column among the
    features."""
    first = pd.read_csv(file, header=None, nrows=1, dtype=str, keep_default_na=False)
    return [str(c) for c in first.iloc[0]] if len(first) else []


def _check_unique(key: str, header: Sequence[object]) -> None:
    repeated = {str(c): n for c, n in Counter(str(c) for c in header).items() if c and n > 1}
    if repeated:
        listed = ", ".join(f"{c!r} ({n}×)" for c, n in repeated.items())
        raise ConfigError(
            f"{key}: repeated column names {listed}; rename them (a copy of the target "
            "among the features would leak the answer)"
        )


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
        y = target.to_numpy(dtype=np.float64)
        n_bad = int(np.sum(~np.isfinite(y) | (np.abs(y) > _FLOAT32_MAX)))
        if n_bad:
            raise ConfigError(
                f"{key}: {n_bad} rows of {cfg.path!r} have an infinite (or beyond float32) "
                "target value; drop or fix them"
            )
        return kind, y
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


def _check_finite(cfg: CsvTask, features: pd.DataFrame) -> None:
    """Refuse inf/-inf cells (and numbers float32 cannot hold) naming their columns; missing
    values are _check_missing's (or task.impute's) business."""
    counts: dict[object, int] = {}
    for col in features.columns:
        column = features[col]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        values = column.to_numpy(dtype=np.float64)
        n_bad = int(np.sum(np.isinf(values) | (np.abs(values) > _FLOAT32_MAX)))
        if n_bad:
            counts[col] = n_bad
    if counts:
        listed = ", ".join(f"{c!r} ({n})" for c, n in counts.items())
        raise ConfigError(
            f"task.path={cfg.path!r}: infinite values (inf, -inf or beyond float32) in column"
            f"{'s' * (len(counts) > 1)} {listed}; replace them with numbers (or leave the cells "
            "empty and set task.impute=mean|median)"
        )


def _check_levels(cfg: CsvTask, features: pd.DataFrame, text: list[str]) -> None:
    """Warn about text columns with many distinct values; refuse past task.max_levels."""
    levels = {c: int(features[c].nunique()) for c in text}
    too_many = {c: n for c, n in levels.items() if n > cfg.max_levels}
    if too_many:
        col, n = max(too_many.items(), key=lambda item: item[1])
        gib = len(features) * (features.shape[1] - len(text) + sum(levels.values())) * 8 / 2**30
        raise ConfigError(
            f"task.max_levels={cfg.max_levels}: text column {col!r} has {n} distinct values, "
            f"one one-hot feature each (~{gib:.2g} GiB as float64); leave it out with "
            f"task.drop=[{col}] if it is an ID or free text, or raise task.max_levels"
        )
    for col, n in levels.items():
        if n > CSV_WARN_LEVELS:
            log.warning(
                "task.path=%r: text column %r has %d distinct values, one one-hot feature "
                "each; an ID column? leave it out with task.drop=[%s] if it carries no signal",
                cfg.path,
                col,
                n,
                col,
            )


def _check_imputable(cfg: CsvTask, features: pd.DataFrame, train: np.ndarray) -> None:
    """Every column with gaps has values in the training rows to fill them from."""
    train_rows = features.iloc[train]
    for col in features.columns[features.isna().any()]:
        if train_rows[col].isna().all():
            raise ConfigError(
                f"task.path={cfg.path!r}: column {col!r} has no values in the training split "
                "to impute from; drop the column or clean the file"
            )


def _column_kinds(cfg: CsvTask, features: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric, text) columns: booleans are numbers (0/1); dates are refused."""
    numeric: list[str] = []
    text: list[str] = []
    for col in features.columns:
        column = features[col]
        if pd.api.types.is_datetime64_any_dtype(column):
            raise ConfigError(
                f"task.path={cfg.path!r}: column {col!r} has unsupported type "
                f"{column.dtype}; convert it to numbers or text"
            )
        is_number = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
        (numeric if is_number else text).append(col)
    return numeric, text


def _as_text(column: pd.Series) -> pd.Series:
    """Cells as str (numbers mixed into a text column sort with it); missing cells as nan."""
    return column.map(str, na_action="ignore").astype(object).where(column.notna(), np.nan)


def _feature_transformer(impute: str, numeric: list[str], text: list[str]) -> Any:
    """Numbers pass through (gaps filled with the training mean/median when ``impute``);
    text is one-hot encoded with the training rows' categories, unseen ones as all zeros
    (gaps filled with the training mode first). Scaling is the bundle's job (see module)."""
    # Imported here: scikit-learn costs seconds to import, and only this task needs it.
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    fill = impute != "none"
    numbers = SimpleImputer(strategy=impute) if fill else "passthrough"
    one_hot = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)
    words = make_pipeline(SimpleImputer(strategy="most_frequent"), one_hot) if fill else one_hot
    return ColumnTransformer(
        [("numbers", numbers, numeric), ("text", words, text)], sparse_threshold=0.0
    )


def _encode_features(
    cfg: CsvTask, features: pd.DataFrame, rows: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], list[str], tuple[InputColumn, ...]]:
    """Each split's feature matrix (float64), the feature names and the columns they came
    from, learned from train rows.

    Names are the numeric columns' names, then ``<column>_<category>`` per one-hot feature.
    """
    numeric, text = _column_kinds(cfg, features)
    _check_levels(cfg, features, text)
    if cfg.impute != "none":
        _check_imputable(cfg, features, rows["train"])
    frame = pd.concat(
        [features[numeric].astype(np.float64), features[text].apply(_as_text)], axis=1
    )
    transformer = _feature_transformer(cfg.impute, numeric, text).fit(frame.iloc[rows["train"]])
    with warnings.catch_warnings():
        # Categories the training rows lack are expected: handle_unknown="ignore" zeros them.
        warnings.filterwarnings("ignore", "Found unknown categories", UserWarning)
        x = {part: _transform(transformer, frame.iloc[idx]) for part, idx in rows.items()}
    # Output names carry the transformer's prefix ("numbers__a", "text__city_Oslo").
    names = [str(name).split("__", 1)[1] for name in transformer.get_feature_names_out()]
    return x, names, _inputs(cfg, transformer, features, numeric, text)


def _inputs(
    cfg: CsvTask, transformer: Any, features: pd.DataFrame, numeric: list[str], text: list[str]
) -> tuple[InputColumn, ...]:
    """Each feature column, in the model's input order, with its width and filled cells."""
    widths = dict.fromkeys(numeric, 1)
    if text:
        words = transformer.named_transformers_["text"]
        encoder = words[-1] if hasattr(words, "steps") else words  # after the imputer
        widths.update(zip(text, map(len, encoder.categories_), strict=True))
    filled = features.isna().sum() if cfg.impute != "none" else pd.Series(0, features.columns)
    return tuple(
        InputColumn(col, "number" if col in numeric else "text", widths[col], int(filled[col]))
        for col in [*numeric, *text]
    )


def _transform(transformer: Any, rows: pd.DataFrame) -> np.ndarray:
    """``rows`` transformed; an empty split stays empty (make_bundle then names it)."""
    if len(rows) == 0:
        return np.zeros((0, len(transformer.get_feature_names_out())))
    return np.asarray(transformer.transform(rows), dtype=np.float64)


def load_csv(cfg: CsvTask) -> TaskData:
    """Load a table, split it (test, then validation), impute and encode it.

    Args:
        cfg: File path, target column, kind (auto | classification | regression), imputation
            (none | mean | median), split fractions and seed, standardization.

    Returns:
        The bundle, named after the data set (:func:`~regsearch.tasks.columns.dataset_name`);
        feature names are the numeric column names, then one ``<column>_<category>`` per
        category of a text column seen in the training rows. Class ``i`` is the ``i``-th
        smallest distinct target value. ``table`` records each column's inputs and
        imputed cells, and the columns left out.

    Raises:
        ConfigError: Bad ``task.name``, bad file, repeated column names, unknown target
            column, unknown columns in ``features``/``drop``, missing values with
            ``impute=none``, infinite values, missing or constant target, no feature columns,
            a text column with more than ``max_levels`` values, or a split without rows (or,
            for classification, a training split of one class).

    Example:
        >>> cfg = CsvTask(name="csv", path="houses.csv", target="price")
        >>> load_csv(cfg).kind  # doctest: +SKIP
        'regression'
    """
    if cfg.kind not in TASK_KINDS:
        raise ConfigError(f"task.kind={cfg.kind!r}: allowed: {', '.join(TASK_KINDS)}")
    if cfg.impute not in IMPUTE:
        raise ConfigError(f"task.impute={cfg.impute!r}: allowed: {', '.join(IMPUTE)}")
    name = dataset_name(cfg)
    df = read_table(cfg.path)
    if cfg.target not in df.columns:
        raise ConfigError(
            f"task.target={cfg.target!r}: no such column in {cfg.path!r}; "
            f"columns: {columns_list(df.columns)}"
        )
    kind, y = _encode_target(cfg, df[cfg.target])
    features, left_out = select_columns(cfg, df)
    if features.shape[1] == 0:
        why = "; left out: " + ", ".join(f"{c.name!r} ({c.why})" for c in left_out)
        raise ConfigError(
            f"task.path={cfg.path!r}: no feature columns besides the target"
            f"{why if left_out else ''}"
        )
    if len(df) < 3:
        raise ConfigError(f"task.path={cfg.path!r}: {len(df)} rows; need at least 3 to split")
    if cfg.impute == "none":
        _check_missing(cfg, features)
    _check_finite(cfg, features)
    rows = split_rows(cfg, len(df))
    x, names, inputs = _encode_features(cfg, features, rows)
    splits = {part: (x[part], y[idx]) for part, idx in rows.items()}
    data = bundle_table(dataclasses.replace(cfg, name=name), kind, splits, names)
    return dataclasses.replace(data, table=TableRecord(cfg.path, len(df), inputs, left_out))
