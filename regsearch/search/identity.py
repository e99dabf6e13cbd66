"""A resumed study must be the same experiment: each study remembers the fingerprint of the
config that created it, and joining it with another one is refused before anything is written.

The fingerprint covers what defines the trials (preset and search space, task and its data
settings, model, training, objective, sampler, seeds, folds); it leaves out where results are
written and how they are shown, and the budget (``search.n_trials``, each family's
``n_trials``, ``search.timeout``, ``search.population``), which a resume may raise.

Example:
    >>> fp = study_fingerprint(config_yaml)  # doctest: +SKIP
    >>> refuse_other_experiment("sqlite:///sweeps/optuna.db", "l2-moons-…", fp)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path

import optuna

from regsearch.config import ConfigError, RegsearchConfig
from regsearch.fingerprint import Fingerprint, fingerprint
from regsearch.search.storage import get_storage
from regsearch.urls import is_journal, sqlite_path

__all__ = [
    "DIGEST_ATTR",
    "SETTINGS_ATTR",
    "refuse_changed_resume",
    "refuse_other_experiment",
    "remember",
    "study_fingerprint",
]

log = logging.getLogger(__name__)

DIGEST_ATTR = "regsearch.fingerprint"
SETTINGS_ATTR = "regsearch.settings"
#: Settings a resumed study may change: where things go, how they are shown, the budget, and
#: the suite's own bookkeeping (its folder refuses changed settings by itself).
_FREE = (
    "paths",
    "tracking",
    "report",
    "progress",
    "threads",
    "engine",
    "device",
    "search.storage",
    "search.study_name",
    "search.resume",
    "search.population",
    "search.n_trials",
    "search.timeout",
    "sweep.description",
    "sweep.families.*.n_trials",
    "suite",
)
#: The differences a user most likely slipped on, named first.
_FIRST = ("sweep.name", "task.name")
_SHOWN = 8


def study_fingerprint(config_yaml: str) -> Fingerprint:
    """The fingerprint of a sweep's resolved config, as its studies store it."""
    return fingerprint(config_yaml, _FREE)


def refuse_other_experiment(storage_url: str, base: str, fp: Fingerprint) -> None:
    """Raise when a study of the sweep ``base`` (``base`` itself, or ``base.<family>``,
    ``base.final``) already exists with another fingerprint; reads only.

    Studies without a stored fingerprint are accepted: those of older versions, and the
    bookkeeping studies that hold no trials of their own (``base.final.claim``).

    Raises:
        ConfigError: One line naming the study and each differing key with its stored value.
    """
    for study in get_storage(storage_url).get_all_studies():
        if study.study_name != base and not study.study_name.startswith(f"{base}."):
            continue
        stored = study.user_attrs.get(DIGEST_ATTR)
        if stored is None:
            log.debug("study %s has no stored fingerprint", study.study_name)
        elif stored != fp.digest:
            raise ConfigError(_refusal(study.study_name, fp, study.user_attrs[SETTINGS_ATTR]))


def refuse_changed_resume(cfg: RegsearchConfig, config_yaml: str) -> None:
    """Before a job starts: refuse resuming a named study that another experiment created.

    Only a job that resumes a named study in a store that exists is checked (reading only);
    :func:`regsearch.sweep.run_sweep` checks every study again as it opens them.
    """
    search = cfg.search
    if not (search.resume and search.study_name):
        return
    path = sqlite_path(search.storage) or (
        Path(search.storage) if is_journal(search.storage) else None
    )
    if path is not None and not path.exists():
        return
    refuse_other_experiment(search.storage, search.study_name, study_fingerprint(config_yaml))


def _refusal(name: str, fp: Fingerprint, stored: dict[str, str]) -> str:
    diffs = sorted(fp.differences(stored), key=lambda d: (d.split("=", 1)[0] not in _FIRST, d))
    shown = "; ".join(diffs[:_SHOWN])
    more = f"; and {len(diffs) - _SHOWN} more" if len(diffs) > _SHOWN else ""
    return (
        f"search.resume=true: study {name!r} was created by another experiment — {shown}{more}; "
        "resume it with the stored settings, or start a new study without search.resume"
    )


def remember(study: optuna.Study, fp: Fingerprint) -> None:
    """Store ``fp`` in ``study`` right after opening it; refuse when it holds another one.

    The check before opening (:func:`refuse_other_experiment`) cannot see a study that
    another worker creates a moment later (workers of a launcher all started with
    ``search.resume=true`` on a fresh store): checked again here, one of two workers with
    different settings is refused.

    Raises:
        ConfigError: The study holds another experiment's fingerprint.
    """
    attrs = study.user_attrs
    stored = attrs.get(DIGEST_ATTR)
    if stored is None:
        study.set_user_attr(SETTINGS_ATTR, fp.settings)
        study.set_user_attr(DIGEST_ATTR, fp.digest)
    elif stored != fp.digest:
        raise ConfigError(_refusal(study.study_name, fp, attrs.get(SETTINGS_ATTR) or {}))
