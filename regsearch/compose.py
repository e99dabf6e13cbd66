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
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from regsearch.config import ConfigError, RegsearchConfig, unknown_key_message, validate

__all__ = [
    "CONF_DIR",
    "CommandLine",
    "compose_checked",
    "multirun_jobs",
    "parse_command_line",
    "presets",
    "validate_composed",
]

_PACKAGED = Path(__file__).resolve().parent / "conf"
#: conf/ ships inside the wheel as regsearch/conf; a source checkout keeps it at the top.
CONF_DIR = _PACKAGED if _PACKAGED.is_dir() else _PACKAGED.parent.parent / "conf"


#: Hydra's flags that take a value in the next argument (``--config-dir DIR``).
_VALUED_FLAGS = {"--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn"}
_VALUED_FLAGS |= {"--cfg", "-c", "--package", "-p", "--experimental-rerun"}


def presets(group: str, config_dirs: Sequence[str | Path] = ()) -> list[str]:
    """The options of a config group (``sweep``, ``task``, ...), sorted; ``config_dirs``
    (``--config-dir``) add the user's own."""
    dirs = [CONF_DIR, *map(Path, config_dirs)]
    return sorted({p.stem for d in dirs for p in (d / group).glob("*.yaml")})


@dataclass(frozen=True)
class CommandLine:
    """``python -m regsearch``'s arguments: overrides, Hydra's flags and the config dirs."""

    overrides: list[str]
    flags: list[str] = field(default_factory=list)
    config_dirs: list[str] = field(default_factory=list)

    @property
    def multirun(self) -> bool:
        """Whether Hydra runs one job per combination (``-m``)."""
        return any(f in ("-m", "--multirun") for f in self.flags)


def parse_command_line(argv: Sequence[str]) -> CommandLine:
    """Split ``argv`` into overrides and Hydra's flags (with their values).

    Example:
        >>> parse_command_line(["-m", "--config-dir", "my", "+sweep=l2", "-cd=more"])
        CommandLine(overrides=['+sweep=l2'], flags=['-m', '--config-dir', 'my', '-cd=more'], \
config_dirs=['my', 'more'])
    """
    overrides: list[str] = []
    flags: list[str] = []
    dirs: list[str] = []
    args = iter(argv)
    for arg in args:
        if not arg.startswith("-"):
            overrides.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name in _VALUED_FLAGS and not eq:
            value = next(args, "")
            flags += [arg, value]
        else:
            flags.append(arg)
        if name in ("--config-dir", "-cd"):
            dirs.append(value)
    return CommandLine(overrides, flags, dirs)


def compose_checked(
    overrides: Sequence[str], check_files: bool = True, config_dirs: Sequence[str | Path] = ()
) -> tuple[RegsearchConfig, str]:
    """Compose ``overrides`` as the CLI does and validate them.

    ``config_dirs`` are searched for presets before the packaged ``conf/`` (Hydra's
    ``--config-dir``); ``hydra.searchpath=[...]`` among the overrides works too.

    Returns:
        The typed config and its resolved YAML (what the run folder's config.yaml holds).

    Raises:
        ConfigError: One line naming the bad key or value and what is allowed.
    """
    from hydra import compose, initialize_config_dir

    kept = [a for a in overrides if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    kept += _searchpath(overrides, config_dirs)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        try:
            cfg = compose(config_name="config", overrides=kept)
        except Exception as err:  # any failure to apply the command line is bad input
            message = _composition_message(err, kept, config_dirs)
            raise ConfigError(" ".join(message.split())) from None
    return validate_composed(cfg, check_files), OmegaConf.to_yaml(cfg, resolve=True)


def _searchpath(overrides: Sequence[str], config_dirs: Sequence[str | Path]) -> list[str]:
    """The ``hydra.searchpath`` override that adds ``config_dirs`` (and keeps the user's)."""
    for d in config_dirs:
        if not Path(d).is_dir():
            raise ConfigError(
                f"--config-dir={d}: not a folder (a folder holding sweep/<name>.yaml)"
            )
    given = [a for a in overrides if a.lstrip("+").startswith("hydra.searchpath=")]
    paths = [f"file://{Path(d).resolve()}" for d in config_dirs]
    if given:
        inner = given[-1].split("=", 1)[1].strip().strip("[]")
        paths += [p.strip() for p in inner.split(",") if p.strip()]
    return [f"hydra.searchpath=[{','.join(paths)}]"] if paths else []


def multirun_jobs(overrides: Sequence[str]) -> list[list[str]]:
    """The overrides of each job Hydra's basic sweeper launches for ``-m overrides``.

    Example:
        >>> multirun_jobs(["+sweep=l1,l2", "seed=0"])
        [['+sweep=l1', 'seed=0'], ['+sweep=l2', 'seed=0']]

    Raises:
        ConfigError: An override Hydra cannot parse.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception as err:  # Hydra's parse errors: one line, like composition's
        raise ConfigError(" ".join(_composition_message(err, list(overrides)).split())) from None
    return [job for batch in batches for job in batch]


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


def _composition_message(
    err: Exception, overrides: list[str], config_dirs: Sequence[str | Path] = ()
) -> str:
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
                f"(allowed {group} values: {', '.join(presets(group, config_dirs))})"
            )
        if hint:
            return (
                f"{key}: not set by the loaded presets; add it with {hint.rsplit(' use ', 1)[-1]}"
            )
    for group in ("sweep", "task", "model", "train", "search", "tracking", "experiment"):
        if f"'{group}/" in first or f"in '{group}'" in first or f"{group}/" in first:
            return f"{first} — allowed {group} values: {', '.join(presets(group, config_dirs))}"
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
