"""``python -m regsearch +sweep=<preset> [overrides]``: compose, validate, sweep, report.

Bad input exits with status 2 and one line on stderr before anything is written: the command
line is composed and validated once up front (Hydra would otherwise report composition errors
with status 1 and several lines), then Hydra runs the job.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from regsearch.config import ConfigError, register_configs, validate

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

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        _fail(_composition_message(str(err)))
    _validate_or_exit(cfg, check_files=True)


def _composition_message(text: str) -> str:
    """Hydra's composition errors span lines; keep the gist and add the allowed presets."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else text
    for group in ("sweep", "task", "model", "train", "search", "tracking", "experiment"):
        if f"'{group}/" in first or f"in '{group}'" in first or f"{group}/" in first:
            return f"{first} — allowed {group} values: {', '.join(_presets(group))}"
    return first


def _validate_or_exit(cfg: DictConfig, check_files: bool) -> None:
    if OmegaConf.select(cfg, "sweep") is None:
        _fail(f"no sweep chosen: add +sweep=<preset>, one of: {', '.join(_presets('sweep'))}")
    try:
        validate(cfg, check_files=check_files)
    except ConfigError as err:
        _fail(str(err))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)
def _job(cfg: DictConfig) -> None:
    from regsearch.console import print_summary
    from regsearch.sweep import run_sweep

    _validate_or_exit(cfg, check_files=True)
    typed = validate(cfg)
    try:
        result = run_sweep(typed, OmegaConf.to_yaml(cfg, resolve=True))
    except ConfigError as err:
        _fail(str(err))
    except KeyboardInterrupt as stop:
        study = stop.args[0] if stop.args else "<study>"
        print(
            f"\nregsearch: interrupted; both stores are consistent. Resume with: "
            f"search.resume=true search.study_name={study}",
            file=sys.stderr,
        )
        sys.exit(130)
    print_summary(result)


def main() -> None:
    """Console entry point (``regsearch`` and ``python -m regsearch``)."""
    register_configs()
    precheck(sys.argv[1:])
    _job()


if __name__ == "__main__":
    main()
