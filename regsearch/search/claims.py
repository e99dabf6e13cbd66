"""Claims in an Optuna storage: which worker of a shared study does a once-only job.

The final phase of a shared study runs once: the worker that claims it runs it, the others
learn who did. A claim is an empty study, because creating a study is the one write every
Optuna storage makes exclusive.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError

from regsearch.search.storage import get_storage

__all__ = ["HOLDER", "Claim", "claim", "holder", "holder_text", "release"]

#: The holder of a claim whose attributes were never written (its claimant died first).
UNKNOWN = "unknown"
#: The claim study's one user attribute: who holds it (worker, host, pid, since), written in
#: one go so that a claimant killed at any moment leaves no holder or a whole one.
HOLDER = "holder"


@dataclass(frozen=True)
class Claim:
    """Who holds a claim (see :func:`claim`), and whether it is this caller."""

    name: str
    worker: str
    host: str
    pid: int
    since: str
    mine: bool
    where: str = ""  # what the holder names as its output (a run folder), for the others

    @property
    def stale(self) -> bool:
        """Held by a process of this host that no longer runs (killed before releasing it), or
        by one that died between creating the claim and naming itself (no holder after
        :func:`_holder`'s wait: the attributes follow the claim within milliseconds)."""
        if self.mine:
            return False
        if self.worker == UNKNOWN:
            return True
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def claim(storage_url: str, name: str, worker: str, where: str = "") -> Claim:
    """Claim ``name`` in the storage: the first worker to create the (empty) study ``name``
    holds it; everyone else gets the holder.

    Creating a study is the one write every Optuna storage makes exclusive: RDB storages by
    the unique index on study names, the journal by the order of its append-only log. Study
    attributes are not (``set_study_user_attr`` overwrites), and neither are trial numbers
    on PostgreSQL. The claim study's one attribute (:data:`HOLDER`) says who holds it.

    Example:
        >>> held = claim("sqlite:///optuna.db", "s.final.claim", "me")  # doctest: +SKIP
        >>> held.mine  # doctest: +SKIP
        True
    """
    storage = get_storage(storage_url)
    host, since = socket.gethostname(), time.strftime("%Y-%m-%dT%H:%M:%S")
    attrs = {"worker": worker, "host": host, "pid": os.getpid(), "since": since, "where": where}
    try:
        study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], name)
    except DuplicatedStudyError:
        held = _holder(storage, name)
        return dataclasses.replace(held, mine=True) if held.worker == worker else held
    storage.set_study_user_attr(study_id, HOLDER, attrs)
    return Claim(name, worker, host, os.getpid(), since, mine=True, where=where)


def holder(storage_url: str, name: str) -> Claim | None:
    """Who holds the claim ``name`` (never this caller's), or None when nobody claimed it."""
    storage = get_storage(storage_url)
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return _holder(storage, name)


def holder_text(holder: dict[str, Any]) -> str:
    """``worker W, whose outputs are in <where>``: a claim's holder as a sweep's summary keeps
    it (``summary["final_by"]``), for the console and the report."""
    where = holder.get("where") or f"host {holder.get('host', '?')}"
    return f"worker {holder.get('worker', '?')}, whose outputs are in {where}"


def release(storage_url: str, held: Claim) -> bool:
    """Give up a claim this process holds, or take a stale one away; True if it was deleted.

    Deleting by the claim's study id makes a takeover race-free: of two workers releasing
    one stale claim, only one delete finds the study.
    """
    storage = get_storage(storage_url)
    try:
        study_id = storage.get_study_id_from_name(held.name)
        if _holder_attrs(storage, study_id).get("worker", UNKNOWN) != held.worker:
            return False  # taken over meanwhile
        storage.delete_study(study_id)
    except KeyError:
        return False
    return True


def _holder(storage: optuna.storages.BaseStorage, name: str, wait_s: float = 5.0) -> Claim:
    """The claim's holder; its attributes are written just after the claim, so wait for them."""
    deadline = time.monotonic() + wait_s
    attrs: dict[str, Any] = {}
    while True:
        try:
            attrs = _holder_attrs(storage, storage.get_study_id_from_name(name))
        except KeyError:
            attrs = {}  # released meanwhile
        if "worker" in attrs or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return Claim(
        name,
        str(attrs.get("worker", UNKNOWN)),
        str(attrs.get("host", "")),
        int(attrs.get("pid", 0)),
        str(attrs.get("since", "")),
        mine=False,
        where=str(attrs.get("where", "")),
    )


def _holder_attrs(storage: optuna.storages.BaseStorage, study_id: int) -> dict[str, Any]:
    return dict(storage.get_study_user_attrs(study_id).get(HOLDER) or {})
