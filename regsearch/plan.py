"""A sweep's plan: the validated config turned into domain objects, fixed before any trial.

The plan owns what every phase shares: the task (with its cross-validation folds), the model
and schedule, the fixed hyperparameters, the objective, the families to tune (the learning
rate added to each when ``sweep.tune_lr``), and how a trial's values become engine members
(seed × fold).

Example:
    >>> plan = make_plan(cfg)  # doctest: +SKIP
    >>> [(m.seed, m.fold) for m in plan.members(0, {"dropout": 0.2}, [0])][:2]  # doctest: +SKIP
    [(0, 0), (0, 1)]
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from regsearch.config import (
    AUTO_FINAL_FOLDS,
    ConfigError,
    FamilyConfig,
    ModelConfig,
    ParamSpec,
    RegsearchConfig,
    cv_folds,
    dropout_layers,
)
from regsearch.convnets import CnnSpec
from regsearch.engine import OnEpoch, OnResult, Probe, Refill, Schedule, resolve_engine
from regsearch.networks import NetSpec, build_net, mlp_stack, net_spec
from regsearch.records import Hyperparams, Member, MemberResult
from regsearch.search.objective import Objective
from regsearch.search.space import apply_params, base_hparams
from regsearch.search.working import new_worker_id
from regsearch.tasks import TaskData, load_task
from regsearch.usernets import CustomSpec, inspect_custom

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["BASELINE", "Plan", "make_plan", "resolve_device"]

_Record = TypeVar("_Record", bound="DataclassInstance")
log = logging.getLogger(__name__)

#: Name of the unregularized arm (a family of its own when the learning rate is tuned).
BASELINE = "baseline"


@dataclass
class Plan:
    """Everything fixed before the first trial."""

    cfg: RegsearchConfig
    task: TaskData  # task.folds > 0: members are cross-validated on the train+val pool
    spec: NetSpec
    schedule: Schedule
    base: Hyperparams
    objective: Objective
    engine_name: str
    device: str
    families: dict[str, FamilyConfig]  # tuned one study each
    sweep_name: str
    settings: dict[str, dict[str, Any]]  # fixed named settings (experiment presets)
    # Optional families that cannot apply to the model: name → why they were left out.
    left_out: dict[str, str] = field(default_factory=dict)
    # The task as the final comparison sees it (its folds: search.final_cv); None = ``task``.
    final_task: TaskData | None = None
    # This sweep's identity in shared studies: stamped on its trials, seeds its sampler when it
    # joins a study, holds its claims. One per run, also for two sweeps in one process.
    worker: str = field(default_factory=new_worker_id)

    @property
    def final_candidates_known(self) -> bool:
        """True for experiments: the candidates are given, nothing is tuned."""
        return bool(self.settings)

    def for_final(self) -> Plan:
        """This plan with the final comparison's folds (``search.final_cv``)."""
        if self.final_task is None or self.final_task is self.task:
            return self
        return dataclasses.replace(self, task=self.final_task, final_task=None)

    @property
    def folds(self) -> list[int | None]:
        """The fold of each member of a (trial, seed): [None] without cross-validation."""
        return list(range(self.task.folds)) if self.task.folds else [None]

    def train(
        self,
        members: list[Member],
        on_epoch: OnEpoch | None = None,
        *,
        refill: Refill | None = None,
        on_result: OnResult | None = None,
        probe: Probe | None = None,
    ) -> list[MemberResult]:
        """Train ``members`` on the configured engine and device (hooks: see
        :mod:`regsearch.engine.members`).

        Each result gets its original-unit losses before ``on_result`` sees it: a study tells
        a trial from there, and its records must equal those ``train`` returns.
        """
        _, engine = resolve_engine(self.engine_name, mlp_stack(self.spec))
        converted: set[int] = set()

        def finished(index: int, result: MemberResult) -> None:
            self._original_units(result)
            converted.add(index)  # the same object comes back from the engine: convert once
            if on_result is not None:
                on_result(index, result)

        results: list[MemberResult] = engine(
            self.task,
            self.spec,
            members,
            schedule=self.schedule,
            on_epoch=on_epoch,
            device=self.device,
            refill=refill,
            on_result=finished,
            probe=probe,
        )
        for index, result in enumerate(results):
            if index not in converted:
                self._original_units(result)
        return results

    def hparams(self, values: dict[str, Any]) -> Hyperparams:
        """The fixed hyperparameters with a trial's sampled ``values`` on top."""
        return apply_params(self.base, values, dropout_layers(self.cfg.model))

    def members(self, trial: int, values: dict[str, Any], seeds: list[int]) -> list[Member]:
        """One member per (seed, fold) of a trial; seeds are its repeats."""
        hp = self.hparams(values)
        return [
            Member(trial=trial, seed=s, hparams=hp, repeat=r, fold=f)
            for r, s in enumerate(seeds)
            for f in self.folds
        ]

    def _original_units(self, result: MemberResult) -> None:
        """Regression on a z-scored target: add each loss in the target's original units."""
        data = self.task.member_data(result.member.fold, result.member.seed)
        if self.task.is_classification or not data.target_standardized:
            return
        scale = data.target_scale**2  # MSE scales with the square of the target's std
        for split in ("train", "val", "test"):
            if f"{split}_loss" in result.final:
                result.final[f"{split}_loss_orig"] = result.final[f"{split}_loss"] * scale


def resolve_device(name: str) -> str:
    """``device=auto`` picks CUDA when present; asking for CUDA without one is a config error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda': no CUDA device is available here; use device=auto or cpu")
    return name


def make_plan(cfg: RegsearchConfig) -> Plan:
    """Load the task, choose the folds and build every fixed piece of the sweep.

    Raises:
        ConfigError: Bad data, folds the data cannot have, or parameters the model lacks.
    """
    assert cfg.sweep is not None
    task = _with_folds(load_task(cfg.task), cfg)
    final_task = _final_folds(task, cfg)
    spec = _model_spec(cfg, task)
    engine_name = _engine_name(cfg, spec)
    settings = {k: dict(v) for k, v in cfg.sweep.settings.items()}
    unfit = inapplicable(cfg.model, spec)
    left_out = {
        name: why[1]
        for name, fam in cfg.sweep.families.items()
        if fam.optional and (why := _inapplicable(fam.params, unfit)) is not None
    }
    for name, reason in left_out.items():
        log.info("left out the %s family: %s", name, reason)
    kept = {k: v for k, v in cfg.sweep.families.items() if k not in left_out}
    families = _families(cfg, kept, settings)
    _check_layers(families, dropout_layers(cfg.model), unfit)
    _check_fixed(cfg.model, unfit)
    return Plan(
        cfg=cfg,
        task=task,
        spec=spec,
        schedule=_schedule(cfg),
        base=base_hparams(cfg),
        objective=Objective.from_config(cfg.search, task.is_classification),
        engine_name=engine_name,
        device=resolve_device(cfg.device),
        families=families,
        sweep_name=cfg.sweep.name,
        settings=settings,
        left_out=left_out,
        final_task=final_task,
    )


def _with_folds(task: TaskData, cfg: RegsearchConfig) -> TaskData:
    """The task with ``search.cv`` resolved against its pool, checked on the first seed."""
    pool = len(task.x_train) + len(task.x_val)
    k = cv_folds(cfg.search.cv, pool)
    if not k:
        return task
    try:
        _check_folds(task, k, cfg.seed)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return dataclasses.replace(task, folds=k)


def _final_folds(task: TaskData, cfg: RegsearchConfig) -> TaskData:
    """The task with ``search.final_cv`` resolved: auto is AUTO_FINAL_FOLDS folds when the
    tuning is cross-validated and every class has that many rows, else the tuning's split."""
    text = str(cfg.search.final_cv).strip().lower()
    if text == "auto":
        k = AUTO_FINAL_FOLDS if task.folds else 0
        if k:
            try:
                _check_folds(task, k, cfg.seed)
            except ValueError:
                return task  # a class too small for 10 folds: keep the tuning's folds
    else:
        k = cv_folds(text, len(task.x_train) + len(task.x_val), key="search.final_cv")
        if k:
            try:
                _check_folds(task, k, cfg.seed)
            except ValueError as err:
                raise ConfigError(f"search.final_cv={k}: {err}") from None
    return task if k == task.folds else dataclasses.replace(task, folds=k)


def _check_folds(task: TaskData, k: int, seed: int) -> None:
    """Raise ValueError when the pool cannot have ``k`` (stratified) folds."""
    from regsearch.tasks.folds import fold_indices

    y = torch.cat([task.y_train, task.y_val]).reshape(len(task.x_train) + len(task.x_val), -1)
    fold_indices(y[:, 0].cpu().numpy(), k, seed, task.is_classification)


def _model_spec(cfg: RegsearchConfig, task: TaskData) -> NetSpec:
    """The model's spec for this task's data; a cnn the data cannot feed is refused."""
    try:
        spec = net_spec(cfg.model, task.shape, task.n_outputs)
        if isinstance(spec, CnnSpec):
            build_net(spec)  # kernels that do not fit the input fail here, not per member
    except ValueError as err:
        raise ConfigError(f"model.name={cfg.model.name!r}: {err}") from None
    return spec


def _engine_name(cfg: RegsearchConfig, spec: NetSpec) -> str:
    """The engine that trains ``spec``: population or reference."""
    name, _ = resolve_engine(cfg.engine, mlp_stack(spec))
    return name


def _schedule(cfg: RegsearchConfig) -> Schedule:
    return _from_section(Schedule, cfg.train, order_seed=cfg.seed)


def _from_section(kind: type[_Record], section: object, **given: Any) -> _Record:
    """A ``kind`` record from the like-named keys of a config section, ``given`` on top.

    The schemas name their keys after the fields of the records they feed (``model`` →
    :class:`ModelSpec`, ``train`` → :class:`Schedule`), so a field added to both travels
    without a line here. Lists become tuples (the records are frozen); fields the section
    lacks keep the record's default.
    """
    values = dict(given)
    for f in dataclasses.fields(kind):
        if f.name not in values and hasattr(section, f.name):
            value = getattr(section, f.name)
            is_list = isinstance(value, Sequence) and not isinstance(value, str)
            values[f.name] = tuple(value) if is_list else value
    return kind(**values)


def _families(
    cfg: RegsearchConfig, families: dict[str, FamilyConfig], settings: dict[str, Any]
) -> dict[str, FamilyConfig]:
    """The studies to tune; with ``tune_lr`` each searches lr and the baseline is one too."""
    assert cfg.sweep is not None
    families = dict(families)
    if not families and (cfg.sweep.params or not settings):
        families = {
            cfg.sweep.name: FamilyConfig(
                params=dict(cfg.sweep.params), n_trials=cfg.search.n_trials
            )
        }
    if not cfg.sweep.tune_lr or settings or not any(f.params for f in families.values()):
        return families
    low, high = cfg.sweep.lr_range
    lr = ParamSpec(low=cfg.train.lr * low, high=cfg.train.lr * high, log=True)
    tuned = {
        name: dataclasses.replace(fam, params={"lr": lr, **fam.params})  # a preset's own lr wins
        for name, fam in families.items()
    }
    budget = max(fam.n_trials for fam in families.values())  # the same chance as any arm
    return {BASELINE: FamilyConfig(params={"lr": lr}, n_trials=budget), **tuned}


def inapplicable(model: ModelConfig, spec: NetSpec) -> dict[str, str]:
    """Searched names the model cannot take (``dropout``, ``batch_norm``) → why not.

    An MLP without hidden layers has nothing to drop or normalize; a user's module takes
    dropout only through an nn.Dropout of its own and batch norm only through a
    ``batch_norm`` argument (found by building it once: :func:`inspect_custom`, which also
    refuses a callable that breaks the contract).
    """
    if isinstance(spec, CustomSpec):
        facts = inspect_custom(spec)
        target = f"model._target_={spec.target}"
        unfit = {}
        if not facts.has_dropout:
            unfit["dropout"] = f"{target} builds no nn.Dropout to set; add one to the module"
        if not facts.takes_batch_norm:
            unfit["batch_norm"] = (
                f"{target} takes no batch_norm argument; add batch_norm: bool to it"
            )
        return unfit
    if model.name == "mlp" and not model.hidden:
        return {
            "dropout": "the model has no hidden layer to drop (model.hidden=[])",
            "batch_norm": "the model has no hidden layer to normalize (model.hidden=[])",
        }
    return {}


def _check_fixed(model: ModelConfig, unfit: dict[str, str]) -> None:
    """Refuse a fixed setting (not searched) the model cannot take."""
    if model.batch_norm and "batch_norm" in unfit:
        raise ConfigError(f"model.batch_norm=True: {unfit['batch_norm']}")
    if any(model.dropout) and "dropout" in unfit:
        raise ConfigError(f"model.dropout={list(model.dropout)}: {unfit['dropout']}")


def _check_layers(families: dict[str, FamilyConfig], n_layers: int, unfit: dict[str, str]) -> None:
    """Refuse a searched dropout layer the model lacks, or a family it cannot take."""
    for fam in families.values():
        for name in fam.params:
            if name.startswith("dropout_") and int(name.split("_")[1]) > n_layers:
                raise ConfigError(
                    f"sweep.params.{name}: the model takes {n_layers} dropout rates "
                    f"(dropout_1..dropout_{n_layers})"
                )
        why = _inapplicable(fam.params, unfit)
        if why is not None:
            raise ConfigError(f"sweep.params.{why[0]}: {why[1]}")


def _inapplicable(params: dict[str, ParamSpec], unfit: dict[str, str]) -> tuple[str, str] | None:
    """(parameter, why) for the first searched name the model cannot take (see
    :func:`inapplicable`), e.g. ``("dropout", "the model has no hidden layer to drop ...")``."""
    for name in params:
        base = "dropout" if name.startswith("dropout_") else name
        if base in unfit:
            return name, unfit[base]
    return None
