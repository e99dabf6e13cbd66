"""Arrays, tensors or a torch Dataset as a ``task=arrays`` task: ``regsearch.run(..., data=...)``.

What ``data`` may be:

- ``(x, y)``: numpy arrays or torch tensors, ``x`` of shape ``[n, *shape]`` and ``y`` of
  shape ``[n]``; validation and test rows are cut from them (``task.val_fraction``,
  ``task.test_fraction``);
- a dict with ``x``, ``y`` and optionally ``x_val``/``y_val`` and ``x_test``/``y_test``:
  predefined splits, used as given;
- a ``torch.utils.data.Dataset`` whose items are ``(x, y)`` pairs (each ``x`` one example,
  each ``y`` a scalar): read once, item by item, then as ``(x, y)``.

The arrays are stored in one ``.npz`` file under ``<paths.root>/data/`` (see
:mod:`regsearch.datafiles`) and the sweep runs ``task=arrays`` on it, its shape taken from
``x``: ``model=cnn`` convolves images and sequences given this way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from regsearch.compose import compose_checked
from regsearch.config import ConfigError
from regsearch.datafiles import file_stem, quoted, stored_file
from regsearch.tasks.arrays import paired_splits

__all__ = ["DEFAULT_NAME", "as_arrays", "stored_arrays"]

#: task.name of arrays run without one.
DEFAULT_NAME = "arrays"
_KEYS = ("x", "y", "x_val", "y_val", "x_test", "y_test")


@contextmanager
def stored_arrays(
    data: Any, overrides: Sequence[str], config_dirs: Sequence[str | Path] = ()
) -> Iterator[list[str]]:
    """The overrides that run a sweep on ``data``: ``overrides`` plus ``task=arrays`` with
    the stored file and ``task.name`` (``arrays`` unless given).

    Raises:
        ConfigError: ``data`` of a kind listed nowhere above, arrays that do not fit
            together, another task among ``overrides``, or any other bad override.
    """
    arrays = as_arrays(data)
    for arg in overrides:
        key = arg.lstrip("+~")
        if (key.startswith("task=") and key != "task=arrays") or key.startswith("task.npz="):
            raise ConfigError(f"{arg}: data= is the data of this run; leave {arg} out")
    names = [a.split("=", 1)[1] for a in overrides if a.startswith("task.name=")]
    args = [*overrides]
    args += [] if "task=arrays" in (a.lstrip("+") for a in overrides) else ["task=arrays"]
    args += [] if names else [f"task.name={DEFAULT_NAME}"]
    # Composed once without the file: bad overrides are refused before anything is written.
    typed, _ = compose_checked([*args, "task.npz=arrays.npz"], False, config_dirs)
    name = f"{file_stem(names[-1] if names else DEFAULT_NAME, DEFAULT_NAME)}-{_digest(arrays)}.npz"
    with stored_file(typed.paths.root, name, lambda path: _write(arrays, path)) as path:
        yield [*args, f"task.npz={quoted(str(path))}"]


def as_arrays(data: Any) -> dict[str, np.ndarray]:
    """``data`` as the file's arrays (see the module docstring for what it may be).

    Raises:
        ConfigError: Anything else, or arrays whose rows do not match.

    Example:
        >>> sorted(as_arrays((np.zeros((4, 2, 3)), np.arange(4))))
        ['x', 'y']
    """
    if isinstance(data, Mapping):
        unknown = sorted(set(map(str, data)) - set(_KEYS))
        if unknown:
            raise ConfigError(f"data: unknown keys {unknown}; allowed: {', '.join(_KEYS)}")
        arrays = {k: _array(k, v) for k, v in data.items()}
    elif isinstance(data, tuple) and len(data) == 2:
        arrays = {"x": _array("x", data[0]), "y": _array("y", data[1])}
    elif _is_dataset(data):
        arrays = _from_dataset(data)
    else:
        raise ConfigError(
            f"data: {type(data).__name__} is not data regsearch reads; give a DataFrame with "
            "target=, (x, y) arrays or tensors, a dict of them, or a torch Dataset"
        )
    paired_splits(arrays, "data")  # the checks the task makes of its file, before writing it
    return arrays


def _array(key: str, value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, possibly on a device
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"data[{key!r}]: not an array ({err})") from None
    if array.dtype == object:
        raise ConfigError(f"data[{key!r}]: an array of Python objects; give numbers")
    return array


def _is_dataset(data: Any) -> bool:
    from torch.utils.data import Dataset

    return isinstance(data, Dataset)


def _from_dataset(data: Any) -> dict[str, np.ndarray]:
    """Every item of a map-style Dataset, as ``x`` (stacked examples) and ``y``."""
    try:
        items = [data[i] for i in range(len(data))]
    except TypeError as err:
        raise ConfigError(f"data: a Dataset with a length and items by index ({err})") from None
    if not items or not all(isinstance(i, tuple | list) and len(i) == 2 for i in items):
        raise ConfigError("data: a Dataset's items must be (x, y) pairs")
    xs = [_array("x", x) for x, _ in items]
    ys = [_array("y", y) for _, y in items]
    if len({x.shape for x in xs}) > 1 or any(y.ndim for y in ys):
        raise ConfigError("data: a Dataset's examples must share one shape and y be scalars")
    return {"x": np.stack(xs), "y": np.stack(ys)}


def _digest(arrays: dict[str, np.ndarray]) -> str:
    """12 hex digits of the arrays' names, types, shapes and bytes: same data, same file."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:12]


def _write(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Write atomically: a second run on the same data never reads half a file."""
    part = path.with_name(path.name + ".part.npz")
    np.savez(part, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    part.replace(path)
