"""``python -m regsearch +sweep=<preset> [overrides]``: compose, validate, sweep, report.

Bad input exits with status 2 and one line on stderr before anything is written: the command
line is composed and validated once up front (Hydra would otherwise report composition errors
with status 1 and several lines). A single run then runs at once, as :func:`regsearch.run`
does; Hydra runs the jobs of a multirun (``-m``) and of its own flags and overrides.
"""

from __future__ import annotations

import gc
import logging
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

import hydra
from omegaconf import DictConfig, OmegaConf

from regsearch.compose import (
    CONF_DIR,
    compose_checked,
    multirun_jobs,
    parse_command_line,
    presets,
    validate_composed,
)
from regsearch.config import ConfigError, RegsearchConfig, register_configs

if TYPE_CHECKING:
    from regsearch.fingerprint import Fingerprint

__all__ = ["CONF_DIR", "main", "precheck", "resume_command"]


log = logging.getLogger("regsearch")


def _fail(message: str) -> NoReturn:
    print(f"regsearch: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(2)


#: Flags after which Hydra runs no sweep (help, printing the config, shell completion).
_NO_RUN_FLAGS = (
    "--help",
    "-h",
    "--hydra-help",
    "--info",
    "--cfg",
    "-c",
    "--shell-completion",
    "-sc",
)


def precheck(argv: Sequence[str]) -> None:
    """Compose and validate every job the command line will run; exit 2 on the first error.

    A multirun (``-m``) is expanded as Hydra's basic sweeper does, so a bad value in the last
    combination is refused before the first job starts; a job that resumes a named study is
    checked against the study's stored settings. Skipped for Hydra's flags that run nothing,
    and for another sweeper plugin (its jobs validate themselves and exit 2 the same way).
    """
    line = parse_command_line(argv)
    if any(f.split("=", 1)[0] in _NO_RUN_FLAGS for f in line.flags):
        return
    if any(o.lstrip("+~").startswith("hydra/sweeper") for o in line.overrides):
        return
    from regsearch.search.identity import refuse_changed_resume

    try:
        if line.multirun:
            _refuse_preset_keys_without_plus(line.overrides)
        jobs = multirun_jobs(line.overrides) if line.multirun else [line.overrides]
        shared: dict[tuple[str, str], Fingerprint] = {}
        for job in jobs:
            typed, yaml_text = compose_checked(job, config_dirs=line.config_dirs)
            refuse_changed_resume(typed, yaml_text)
            _refuse_mixed_study(typed, yaml_text, shared)
    except ConfigError as err:
        _fail(str(err))


def _refuse_preset_keys_without_plus(overrides: Sequence[str]) -> None:
    """``-m +sweep=l1,l2 sweep.final_seeds=2``: Hydra composes the multirun's own config
    before any preset sets ``sweep``, and fails there with several lines; ``++`` works."""
    swept = any(o.startswith("+sweep=") and "," in o for o in overrides)
    plain = [o for o in overrides if o.startswith("sweep.")]
    if swept and plain:
        raise ConfigError(
            f"{plain[0]}: in a multirun over +sweep, write ++{plain[0]} (Hydra composes the "
            "multirun's own config before a preset sets sweep)"
        )


def _refuse_mixed_study(
    typed: RegsearchConfig, yaml_text: str, shared: dict[tuple[str, str], Fingerprint]
) -> None:
    """Jobs of one multirun that name the same study must be the same experiment (workers)."""
    from regsearch.search.identity import study_fingerprint

    if not typed.search.study_name:
        return
    key = (typed.search.storage, typed.search.study_name)
    fp = study_fingerprint(yaml_text)
    first = shared.setdefault(key, fp)
    if first.digest != fp.digest:
        diffs = "; ".join(fp.differences(first.settings, label="first job")[:6])
        raise ConfigError(
            f"search.study_name={key[1]}: jobs of this multirun share the study but not its "
            f"settings — {diffs}; sweep only keys that do "
            "not change the trials (search.n_trials, search.population) over one study"
        )


def _validate_or_exit(cfg: DictConfig, check_files: bool) -> RegsearchConfig:
    """The typed config; exit 2 with one line on bad input, stores and servers included."""
    try:
        return validate_composed(cfg, check_files=check_files)
    except ConfigError as err:
        _fail(str(err))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)
def _job(cfg: DictConfig) -> None:
    """A job Hydra runs (multirun, Hydra's flags, ``hydra.*`` overrides): validate, then run."""
    from hydra.core.hydra_config import HydraConfig

    typed = _validate_or_exit(cfg, check_files=True)
    # The job's own overrides (one combination of a multirun), for the resume command.
    overrides = list(HydraConfig.get().overrides.task)
    _run(typed, OmegaConf.to_yaml(cfg, resolve=True), overrides)


def resume_command(overrides: Sequence[str], study: str) -> str:
    """The command that continues an interrupted sweep: its overrides, resuming ``study``.

    Example:
        >>> resume_command(["+sweep=l2", "task=digits", "search.resume=true"], "l2-digits-x")
        'python -m regsearch +sweep=l2 task=digits search.resume=true search.study_name=l2-digits-x'
    """
    own = ("search.resume", "search.study_name")
    kept = [a for a in overrides if a.split("=", 1)[0].lstrip("+~") not in own]
    resume = ["search.resume=true", f"search.study_name={study}"]
    return shlex.join(["python", "-m", "regsearch", *kept, *resume])


def _run(typed: RegsearchConfig, yaml_text: str, overrides: Sequence[str]) -> None:
    """Run a validated job and print its summary; one line and exit 2, 1 or 130 on failure."""
    from regsearch.recorder import RecorderError, recorder_for

    if typed.suite is not None:  # +experiment=suite: one compare sweep per data set
        from regsearch.suite.cli import suite_job

        _collect_from_here()
        suite_job(typed, yaml_text)
        return
    # Started before torch, pandas and Optuna are imported (~2 s): the recorder's own imports
    # (Optuna's storage; MLflow, seconds) then run beside them, on another core.
    recorder = recorder_for(typed)
    try:
        from regsearch.console import print_summary
        from regsearch.sweep import run_sweep

        _collect_from_here()
        result = run_sweep(typed, yaml_text, recorder)
    except ConfigError as err:
        _fail(str(err))
    except RecorderError as err:
        # One line instead of a traceback through the recorder's queue.
        print(f"regsearch: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as stop:
        study = stop.args[0] if stop.args else "<study>"
        print(
            "\nregsearch: interrupted; both stores are consistent. Resume with:\n  "
            + resume_command(overrides, study),
            file=sys.stderr,
        )
        sys.exit(130)
    finally:
        recorder.close()  # run_sweep has closed it; this one covers a failed import
    print_summary(result)


#: The groups a user picks from, in the order the help lists them (conf/schema is internal).
_USER_GROUPS = ("sweep", "experiment", "task", "train", "model", "search", "tracking", "paths")


def help_text() -> str:
    """What ``--help`` prints: the common commands and the groups a user picks from.

    Hydra's own help (``--hydra-help``) lists its internal groups as well.
    """
    groups = "\n".join(
        f"  {group + ':':<12}{', '.join(presets(group))}"
        for group in _USER_GROUPS
        if presets(group)
    )
    return f"""regsearch: which regularizer, at which strength, makes your network generalize
better, and how each one changes the train/validation gap.

Usage: python -m regsearch +sweep=<preset> [key=value ...]   (or: regsearch ...)

Common commands:
  python -m regsearch +sweep=dropout                  tune one regularizer on the default task
  python -m regsearch +sweep=compare task=wine        every regularizer against a tuned baseline
  python -m regsearch +experiment=nndl_moons          rerun a textbook experiment
  python -m regsearch +experiment=suite               every regularizer on 12 KEEL data sets
  python -m regsearch +sweep=l2 search.cv=5 seed=1    any key of the config can be overridden
  python -m regsearch -m +sweep=l1,l2 task=moons,wine one sweep per combination (Hydra multirun)
  python -m regsearch.report sweeps/<sweep>-<task>/<timestamp>   rebuild a sweep's report
  mlflow ui --backend-store-uri sqlite:///sweeps/mlflow.db       browse every trial

Groups (group=option; sweep and experiment with a leading +):
{groups}

Show the composed config: python -m regsearch +sweep=l2 --cfg job
Hydra's own flags: python -m regsearch --hydra-help
"""


def _collect_from_here() -> None:
    """Garbage-collect what the run creates, not the modules imported before it.

    torch, pandas and Optuna import ~10^6 objects that live until the process ends; the
    collector would walk them in every full collection while importing and again when the
    interpreter shuts down (~0.6 s of a one-trial sweep's 3.8 s, bench_startup.py), so
    collection is off while importing and the imported objects are frozen (never collected).
    """
    gc.freeze()
    gc.enable()


def main() -> None:
    """Console entry point (``regsearch`` and ``python -m regsearch``)."""
    gc.disable()  # until the run's imports are done: _collect_from_here
    try:
        _main()
    finally:
        gc.freeze()  # objects left at exit: the interpreter need not walk them to shut down


def _main() -> None:
    if any(arg in ("--help", "-h") for arg in sys.argv[1:]):
        print(help_text(), end="")
        return
    register_configs()
    argv = sys.argv[1:]
    if _needs_hydra(argv):
        precheck(argv)
        _job()
        return
    # One run composes once, here, as regsearch.run does: Hydra's job runner would compose
    # and validate the same config a second time (~0.3 s) only to set up logging.
    try:
        typed, yaml_text = compose_checked(argv)
    except ConfigError as err:
        _fail(str(err))
    _log_like_hydra()
    _run(typed, yaml_text, argv)


def _needs_hydra(argv: Sequence[str]) -> bool:
    """Whether Hydra must run the job: one of its flags (``-m``, ``--cfg``, ``--config-dir``,
    ...) or an override of its own config (``hydra.*``, ``hydra/<group>``).

    Example:
        >>> _needs_hydra(["+sweep=l2", "task=wine"]), _needs_hydra(["-m", "+sweep=l1,l2"])
        (False, True)
        >>> _needs_hydra(["+sweep=l2", "hydra.verbose=true"])
        True
    """
    return any(a.startswith("-") or a.lstrip("+~").startswith("hydra") for a in argv)


def _log_like_hydra() -> None:
    """The logging a Hydra job gets from conf/config.yaml's ``hydra/job_logging: stdout``:
    INFO and above, the message alone, on stdout."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)


if __name__ == "__main__":
    main()
