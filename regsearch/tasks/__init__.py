"""Built-in tasks: each loader turns a task config into one :class:`TaskData` bundle.

A task name picks its schema (:data:`regsearch.config.TASK_SCHEMAS`), the schema its loader
(:data:`TASK_LOADERS`). Loader modules are imported on first use so that a run pays only for
the one it uses (``sklearn.datasets`` alone takes seconds to import).

Example:
    >>> from regsearch.config import MoonsTask
    >>> data = load_task(MoonsTask(name="moons"))
    >>> data.x_train.shape, data.n_classes
    (torch.Size([150, 2]), 2)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from regsearch.config import TASK_SCHEMAS, ConfigError, TaskConfig, schema
from regsearch.tasks.bundle import TaskData

__all__ = ["TASK_LOADERS", "TaskData", "load_task"]

#: Task schema → (module, function) of its loader, imported only when a task needs it.
TASK_LOADERS: dict[type[TaskConfig], tuple[str, str]] = {
    schema.MoonsTask: ("regsearch.tasks.moons", "load_moons"),
    schema.PolynomialTask: ("regsearch.tasks.polynomial", "load_polynomial"),
    schema.HighdimLinearTask: ("regsearch.tasks.highdim_linear", "load_highdim_linear"),
    schema.Linear12Task: ("regsearch.tasks.linear12", "load_linear12"),
    schema.SklearnTask: ("regsearch.tasks.sklearn_sets", "load_sklearn"),
    schema.IdxTask: ("regsearch.tasks.idx", "load_idx"),
    schema.CsvTask: ("regsearch.tasks.tabular", "load_csv"),
    schema.ArraysTask: ("regsearch.tasks.arrays", "load_arrays"),
    schema.KeelTask: ("regsearch.tasks.keel", "load_keel"),
    schema.Mnist1dTask: ("regsearch.tasks.mnist1d", "load_mnist1d"),
}


def load_task(cfg: TaskConfig) -> TaskData:
    """Build the train/validation/test bundle of the task named ``cfg.name``.

    Args:
        cfg: A task config; its class must be the schema of its name in ``TASK_SCHEMAS``
            (``validate`` guarantees that for configs composed by Hydra). A
            :class:`~regsearch.config.CsvTask` or :class:`~regsearch.config.ArraysTask` may
            have any name: it names the data set.

    Returns:
        The task's tensors; statistics (standardization, imputation) come from train only.

    Raises:
        ConfigError: Unknown task name, a config of the wrong schema, or bad input data.
    """
    name = cfg.name
    # A user's table carries its data set's name (task.name=titanic), not its loader's.
    named = (schema.CsvTask, schema.ArraysTask)
    task_schema = type(cfg) if isinstance(cfg, named) else TASK_SCHEMAS.get(name)
    if task_schema is None:
        raise ConfigError(f"task.name={name!r}: unknown task; allowed: {', '.join(TASK_SCHEMAS)}")
    if not isinstance(cfg, task_schema):
        raise ConfigError(
            f"task.name={name!r}: got a {type(cfg).__name__} config; this task needs "
            f"{task_schema.__name__}"
        )
    module, function = TASK_LOADERS[task_schema]
    loader: Callable[[TaskConfig], TaskData] = getattr(importlib.import_module(module), function)
    return loader(cfg)
