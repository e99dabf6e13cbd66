"""Schema introspection: which keys a section allows, for one-line unknown-key messages."""

from __future__ import annotations

import difflib
import types
from dataclasses import fields, is_dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

from regsearch.config.schema import TASK_SCHEMAS, RegsearchConfig, TaskConfig

__all__ = ["schema_keys", "unknown_key_message"]


def _field_type(cls: type, name: str, task_name: str) -> Any:
    """The declared type of ``cls.name`` with ``X | None`` unwrapped (None: no such field)."""
    if cls is RegsearchConfig and name == "task":
        return TASK_SCHEMAS.get(task_name, TaskConfig)
    if name not in {f.name for f in fields(cls)}:
        return None
    hint = get_type_hints(cls)[name]
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else Any
    return hint


def schema_keys(path: str, task_name: str = "moons") -> list[str] | None:
    """Keys the schema allows directly under the dotted ``path`` ("" is the top level).

    None when ``path`` is not a section of the schema (a leaf, a free-form mapping such as
    ``sweep.params``, or a path the schema does not have).

    Example:
        >>> schema_keys("sweep.params.l2")[:3]
        ['type', 'low', 'high']
    """
    node: Any = RegsearchConfig
    parts = [p for p in path.split(".") if p]
    while parts:
        if not (isinstance(node, type) and is_dataclass(node)):
            return None
        node = _field_type(node, parts.pop(0), task_name)
        if get_origin(node) is dict:
            if not parts:
                return None  # free-form names (searched params, families)
            parts.pop(0)
            node = get_args(node)[1]
    return [f.name for f in fields(node)] if is_dataclass(node) else None


def unknown_key_message(key: str, task_name: str = "moons") -> str | None:
    """One line for a dotted ``key`` the schema does not have; None when the schema has it.

    The first unknown part is named with the closest allowed spelling, as a whole key.

    Example:
        >>> unknown_key_message("serch.n_trials")  # doctest: +ELLIPSIS
        'serch.n_trials: unknown key; did you mean search.n_trials? allowed at the top level: ...'
    """
    parts = key.split(".")
    for i, name in enumerate(parts):
        parent = ".".join(parts[:i])
        allowed = schema_keys(parent, task_name)
        if allowed is None or name in allowed:  # a free-form name (a family), or known
            continue
        guess = difflib.get_close_matches(name, allowed, n=1)
        hint = (
            f"did you mean {'.'.join([*parts[:i], guess[0], *parts[i + 1 :]])}? " if guess else ""
        )
        where = f"in {parent}" if parent else "at the top level"
        return f"{key}: unknown key; {hint}allowed {where}: {', '.join(allowed)}"
    return None
