"""Data handed to :func:`regsearch.run` from Python, kept as a file the run's config names.

A DataFrame (:mod:`regsearch.frames`) or arrays (:mod:`regsearch.arrays`) are written once
under ``<paths.root>/data/<name>-<content hash>.<suffix>``; the sweep then runs on that file
like any ``task.path``, so the run folder's config.yaml still finds the same rows later, and
the same data gives the same file (a resume finds its data again).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from regsearch.config import ConfigError

__all__ = ["file_stem", "quoted", "stored_file"]


@contextmanager
def stored_file(root: str, name: str, write: Callable[[Path], None]) -> Iterator[Path]:
    """``<root>/data/<name>``, written by ``write(path)`` unless it is there already.

    A run refused with a ConfigError inside the block leaves nothing behind: the file (when
    written here) and the folders made for it are removed again.
    """
    folder = Path(root).resolve() / "data"
    made = [d for d in (folder.parent, folder) if not d.exists()]
    path = folder / name
    written = not path.exists()
    try:
        if written:
            folder.mkdir(parents=True, exist_ok=True)
            write(path)
        yield path
    except ConfigError:
        if written:
            path.unlink(missing_ok=True)
        for d in reversed(made):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        raise


def quoted(value: str) -> str:
    """``value`` as a quoted Hydra override value (spaces, commas and brackets kept)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def file_stem(name: str, default: str) -> str:
    """``name`` with only letters, digits, ``_`` and ``-``: a file name's stem."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or default
