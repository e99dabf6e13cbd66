"""Command-line overrides → a composed, validated config: the one path the CLI and the API share.

Hydra reports composition errors over several lines; here each becomes one
:class:`~regsearch.config.ConfigError` line naming the key and what is allowed, so
``python -m regsearch`` can exit 2 with it and :func:`regsearch.run` can raise it.

Example:
    >>> typed, yaml_text = compose_checked(["+sweep=l2", "task=wine"])  # doctest: +SKIP
    >>> typed.task.name  # doctest: +SKIP
    'wine'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from regsearch.config import ConfigError, RegsearchConfig, unknown_key_message, validate

__all__ = ["CONF_DIR", "compose_checked", "presets", "validate_composed"]

_PACKAGED = Path(__file__).resolve().parent / "conf"
#: conf/ ships inside the wheel as regsearch/conf; a source checkout keeps it at the top.
CONF_DIR = _PACKAGED if _PACKAGED.is_dir() else _PACKAGED.parent.parent / "conf"


def presets(group: str) -> list[str]:
    """The options of a config group (``sweep``, ``task``, ...), sorted."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def compose_checked(
    overrides: Sequence[str], check_files: bool = True
) -> tuple[RegsearchConfig, str]:
    """Compose ``overrides`` as the CLI does and validate them.

    Returns:
        The typed config and its resolved YAML (what the run folder's config.yaml holds).

    Raises:
        ConfigError: One line naming the bad key or value and what is allowed.
    """
    from hydra import compose, initialize_config_dir

    kept = [a for a in overrides if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        try:
            cfg = compose(config_name="config", overrides=kept)
        except Exception as err:  # any failure to apply the command line is bad input
            raise ConfigError(" ".join(_composition_message(err, kept).split())) from None
    return validate_composed(cfg, check_files), OmegaConf.to_yaml(cfg, resolve=True)


def validate_composed(cfg: DictConfig, check_files: bool = True) -> RegsearchConfig:
    """The typed config of a composed one that must choose a sweep.

    Raises:
        ConfigError: No ``+sweep``/``+experiment`` chosen, or any invalid value.
    """
    if OmegaConf.select(cfg, "sweep") is None:
        raise ConfigError(
            f"no sweep chosen: add +sweep=<preset>, one of: {', '.join(presets('sweep'))}"
        )
    return validate(cfg, check_files=check_files)


def _composition_message(err: Exception, overrides: list[str]) -> str:
    """Hydra's composition errors span lines; keep the gist, name the key, add what is allowed."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    first = lines[0] if lines else type(err).__name__
    if first.startswith("Error parsing override") and len(lines) > 1:
        first = f"{first}: {lines[1]}"  # the second line says what the parser expected
    hint = next((line for line in lines if line.startswith("To append to your")), "")
    missing = re.match(r"Could not override '([^']+)'", first)
    if missing:
        key = missing.group(1)
        unknown = unknown_key_message(key, _task_name(overrides))
        if unknown:
            return unknown
        if hint and "defaults list" in first:
            group = key.lstrip("+~")
            return (
                f"{key}: not in the defaults list; choose one with {hint.rsplit(' use ', 1)[-1]} "
                f"(allowed {group} values: {', '.join(presets(group))})"
            )
        if hint:
            return (
                f"{key}: not set by the loaded presets; add it with {hint.rsplit(' use ', 1)[-1]}"
            )
    for group in ("sweep", "task", "model", "train", "search", "tracking", "experiment"):
        if f"'{group}/" in first or f"in '{group}'" in first or f"{group}/" in first:
            return f"{first} — allowed {group} values: {', '.join(presets(group))}"
    culprit = _culprit(overrides)
    return f"{culprit}: {first}" if culprit and culprit not in first else first


def _culprit(overrides: list[str]) -> str | None:
    """The first override whose addition makes composition fail (None: the base config fails)."""
    from hydra import compose

    for i in range(len(overrides)):
        try:
            compose(config_name="config", overrides=overrides[: i + 1])
        except Exception:
            return overrides[i]
    return None


def _task_name(overrides: list[str]) -> str:
    names = [a.split("=", 1)[1] for a in overrides if a.lstrip("+").startswith("task=")]
    return names[-1] if names else "moons"
