"""A pandas DataFrame as a ``task=csv`` table: ``regsearch.run(..., data=df, target="y")``.

The frame is stored as Parquet (which keeps its column types) under
``<paths.root>/data/<task.name>-<content hash>.parquet`` and the sweep runs on that file, so
the run folder's config.yaml names a file that still holds the same rows later. The index is
not stored: ``df.reset_index()`` keeps it as a column.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from regsearch.compose import compose_checked
from regsearch.config import ConfigError
from regsearch.datafiles import file_stem, quoted, stored_file

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_NAME", "stored_frame"]

#: task.name of a frame run without one.
DEFAULT_NAME = "dataframe"
_TABLE_KEYS = ("task.path=", "task.target=")


@contextmanager
def stored_frame(
    data: pd.DataFrame | None,
    target: str | None,
    overrides: Sequence[str],
    config_dirs: Sequence[str | Path] = (),
) -> Iterator[list[str]]:
    """The overrides that run a sweep on ``data``: ``overrides`` plus ``task=csv`` with the
    stored frame's path, ``target`` and ``task.name`` (``dataframe`` unless given).

    Without ``data`` and ``target`` the overrides come back as they are. The file (and the
    folders made for it) is removed again when the run is refused with a ConfigError.

    Raises:
        ConfigError: ``data`` without ``target`` (or the reverse), a frame that is not a
            DataFrame or that Parquet cannot hold, a ``target`` that is not a column, another
            task or table among ``overrides``, or any other bad override.

    Example:
        >>> with stored_frame(df, "label", ["+sweep=l2"]) as args:  # doctest: +SKIP
        ...     compose_checked(args)
    """
    if data is None and target is None:
        yield list(overrides)
        return
    frame = _checked_frame(data, target, overrides)
    assert target is not None
    names = [a.split("=", 1)[1] for a in overrides if a.startswith("task.name=")]
    args = [*overrides, f"task.target={quoted(target)}"]
    args += [] if "task=csv" in (a.lstrip("+") for a in overrides) else ["task=csv"]
    args += [] if names else [f"task.name={DEFAULT_NAME}"]
    # Composed once without the file: bad overrides are refused before anything is written,
    # and paths.root is known wherever it comes from (root=, an override, a preset).
    typed, _ = compose_checked([*args, "task.path=frame.parquet"], False, config_dirs)
    stem = file_stem(names[-1] if names else DEFAULT_NAME, DEFAULT_NAME)
    name = f"{stem}-{_digest(frame)}.parquet"
    with stored_file(typed.paths.root, name, lambda path: _write(frame, path)) as path:
        yield [*args, f"task.path={quoted(str(path))}"]


def _checked_frame(
    data: pd.DataFrame | None, target: str | None, overrides: Sequence[str]
) -> pd.DataFrame:
    """``data`` with string column names, once the arguments fit together."""
    import pandas as pd

    if target is None:
        raise ConfigError("data: name the column to predict with target=<column>")
    if data is None:
        raise ConfigError(f"target={target!r}: give the table to predict it from with data=<df>")
    if not isinstance(data, pd.DataFrame):
        raise ConfigError(f"data: a pandas DataFrame, not {type(data).__name__}")
    for arg in overrides:
        key = arg.lstrip("+~")
        if (key.startswith("task=") and key != "task=csv") or key.startswith(_TABLE_KEYS):
            raise ConfigError(f"{arg}: data= is the table of this run; leave {arg} out")
    frame = data.rename(columns=str)
    if str(target) not in frame.columns:
        from regsearch.tasks.columns import columns_list

        raise ConfigError(
            f"target={target!r}: no such column in the DataFrame; "
            f"columns: {columns_list(frame.columns)}"
        )
    return frame


def _digest(frame: pd.DataFrame) -> str:
    """12 hex digits of the frame's rows, column names and types: same frame, same file."""
    import pandas as pd

    try:
        rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    except TypeError as err:  # unhashable cells (lists, dicts)
        raise ConfigError(f"data: cells Parquet cannot hold ({err})") from None
    digest = hashlib.sha256(rows.tobytes())
    digest.update(repr([(c, str(t)) for c, t in frame.dtypes.items()]).encode())
    return digest.hexdigest()[:12]


def _write(frame: pd.DataFrame, path: Path) -> None:
    """Write atomically: a second run on the same frame never reads half a file."""
    part = path.with_suffix(".part")
    try:
        frame.to_parquet(part, index=False)
    except (ValueError, TypeError, NotImplementedError) as err:  # pyarrow's, among them
        part.unlink(missing_ok=True)
        reason = " ".join(str(err).split())[:200]
        raise ConfigError(
            f"data: the DataFrame cannot be stored as Parquet ({type(err).__name__}: {reason});"
            " give every column one type"
        ) from None
    part.replace(path)
