"""``python -m regsearch +sweep=<preset> [overrides]``: compose, validate, sweep, report.

Bad input exits with status 2 and one line on stderr before anything is written: the command
line is composed and validated once up front (Hydra would otherwise report composition errors
with status 1 and several lines), then Hydra runs the job.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import hydra
from omegaconf import DictConfig, OmegaConf

from regsearch.config import (
    ConfigError,
    RegsearchConfig,
    register_configs,
    unknown_key_message,
    validate,
)

__all__ = ["main"]

_PACKAGED = Path(__file__).resolve().parent / "conf"
#: conf/ ships inside the wheel as regsearch/conf; a source checkout keeps it at the top.
CONF_DIR = _PACKAGED if _PACKAGED.is_dir() else _PACKAGED.parent.parent / "conf"
_HYDRA_FLAGS = (
    "-m",
    "--multirun",
    "--help",
    "-h",
    "--hydra-help",
    "--info",
    "--cfg",
    "-c",
    "--shell-completion",
    "-sc",
)

log = logging.getLogger("regsearch")


def _fail(message: str) -> NoReturn:
    print(f"regsearch: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(2)


def _presets(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def precheck(argv: Sequence[str]) -> None:
    """Compose and validate the command line the way the job will; exit 2 on any error.

    Skipped for Hydra's own flags (help, --cfg, multirun sweeps): there each job validates
    its own config and exits 2 the same way.
    """
    if any(a.split("=", 1)[0] in _HYDRA_FLAGS for a in argv):
        return
    overrides = [a for a in argv if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        try:
            cfg = compose(config_name="config", overrides=overrides)
        except Exception as err:  # any failure to apply the command line is bad input
            _fail(_composition_message(err, overrides))
    _validate_or_exit(cfg, check_files=True)


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
                f"(allowed {group} values: {', '.join(_presets(group))})"
            )
        if hint:
            return (
                f"{key}: not set by the loaded presets; add it with {hint.rsplit(' use ', 1)[-1]}"
            )
    for group in ("sweep", "task", "model", "train", "search", "tracking", "experiment"):
        if f"'{group}/" in first or f"in '{group}'" in first or f"{group}/" in first:
            return f"{first} — allowed {group} values: {', '.join(_presets(group))}"
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


def _validate_or_exit(cfg: DictConfig, check_files: bool) -> RegsearchConfig:
    """The typed config; exit 2 with one line on bad input, stores and servers included."""
    if OmegaConf.select(cfg, "sweep") is None:
        _fail(f"no sweep chosen: add +sweep=<preset>, one of: {', '.join(_presets('sweep'))}")
    try:
        return validate(cfg, check_files=check_files)
    except ConfigError as err:
        _fail(str(err))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)
def _job(cfg: DictConfig) -> None:
    from regsearch.console import print_summary
    from regsearch.recorder import RecorderError
    from regsearch.sweep import run_sweep

    typed = _validate_or_exit(cfg, check_files=True)
    try:
        result = run_sweep(typed, OmegaConf.to_yaml(cfg, resolve=True))
    except ConfigError as err:
        _fail(str(err))
    except RecorderError as err:
        # One line instead of a traceback through the recorder's queue.
        print(f"regsearch: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as stop:
        study = stop.args[0] if stop.args else "<study>"
        print(
            f"\nregsearch: interrupted; both stores are consistent. Resume with: "
            f"search.resume=true search.study_name={study}",
            file=sys.stderr,
        )
        sys.exit(130)
    print_summary(result)


#: The groups a user picks from, in the order the help lists them (conf/schema is internal).
_USER_GROUPS = ("sweep", "experiment", "task", "train", "model", "search", "tracking", "paths")


def help_text() -> str:
    """What ``--help`` prints: the common commands and the groups a user picks from.

    Hydra's own help (``--hydra-help``) lists its internal groups as well.
    """
    groups = "\n".join(
        f"  {group + ':':<12}{', '.join(_presets(group))}"
        for group in _USER_GROUPS
        if _presets(group)
    )
    return f"""regsearch: which regularizer, at which strength, makes your network generalize
better, and how each one changes the train/validation gap.

Usage: python -m regsearch +sweep=<preset> [key=value ...]   (or: regsearch ...)

Common commands:
  python -m regsearch +sweep=dropout                  tune one regularizer on the default task
  python -m regsearch +sweep=compare task=wine        every regularizer against a tuned baseline
  python -m regsearch +experiment=nndl_moons          rerun a textbook experiment
  python -m regsearch +sweep=l2 search.cv=5 seed=1    any key of the config can be overridden
  python -m regsearch -m +sweep=l1,l2 task=moons,wine one sweep per combination (Hydra multirun)
  python -m regsearch.report sweeps/<sweep>-<task>/<timestamp>   rebuild a sweep's report
  mlflow ui --backend-store-uri sqlite:///sweeps/mlflow.db       browse every trial

Groups (group=option; sweep and experiment with a leading +):
{groups}

Show the composed config: python -m regsearch +sweep=l2 --cfg job
Hydra's own flags: python -m regsearch --hydra-help
"""


def main() -> None:
    """Console entry point (``regsearch`` and ``python -m regsearch``)."""
    if any(arg in ("--help", "-h") for arg in sys.argv[1:]):
        print(help_text(), end="")
        return
    register_configs()
    precheck(sys.argv[1:])
    _job()


if __name__ == "__main__":
    main()
