"""Built-in tasks: each loader turns a task config into one :class:`TaskData` bundle.

Loader modules are imported inside :func:`load_task` so that a run pays only for the one it
uses (``sklearn.datasets`` alone takes seconds to import).

Example:
    >>> from regsearch.config import MoonsTask
    >>> data = load_task(MoonsTask(name="moons"))
    >>> data.x_train.shape, data.n_classes
    (torch.Size([150, 2]), 2)
"""

from __future__ import annotations

from regsearch.config import (
    TASK_SCHEMAS,
    ConfigError,
    CsvTask,
    HighdimLinearTask,
    IdxTask,
    Linear12Task,
    MoonsTask,
    PolynomialTask,
    SklearnTask,
    TaskConfig,
)
from regsearch.tasks.bundle import TaskData

__all__ = ["TaskData", "load_task"]


def load_task(cfg: TaskConfig) -> TaskData:
    """Build the train/validation/test bundle of the task named ``cfg.name``.

    Args:
        cfg: A task config; its class must be the schema of its name in ``TASK_SCHEMAS``
            (``validate`` guarantees that for configs composed by Hydra).

    Returns:
        The task's tensors; statistics (standardization, imputation) come from train only.

    Raises:
        ConfigError: Unknown task name, a config of the wrong schema, or bad input data.
    """
    name = cfg.name
    schema = TASK_SCHEMAS.get(name)
    if schema is None:
        raise ConfigError(f"task.name={name!r}: unknown task; allowed: {', '.join(TASK_SCHEMAS)}")
    if not isinstance(cfg, schema):
        raise ConfigError(
            f"task.name={name!r}: got a {type(cfg).__name__} config; this task needs "
            f"{schema.__name__}"
        )
    # Each branch imports only the loader it needs; the isinstance asserts narrow cfg for mypy.
    if name == "moons":
        from regsearch.tasks.moons import load_moons

        assert isinstance(cfg, MoonsTask)
        return load_moons(cfg)
    if name == "polynomial":
        from regsearch.tasks.polynomial import load_polynomial

        assert isinstance(cfg, PolynomialTask)
        return load_polynomial(cfg)
    if name == "highdim_linear":
        from regsearch.tasks.highdim_linear import load_highdim_linear

        assert isinstance(cfg, HighdimLinearTask)
        return load_highdim_linear(cfg)
    if name == "linear12":
        from regsearch.tasks.linear12 import load_linear12

        assert isinstance(cfg, Linear12Task)
        return load_linear12(cfg)
    if name in ("digits", "breast_cancer", "wine", "diabetes"):
        from regsearch.tasks.sklearn_sets import load_sklearn

        assert isinstance(cfg, SklearnTask)
        return load_sklearn(cfg)
    if name in ("mnist", "fashion_mnist"):
        from regsearch.tasks.idx import load_idx

        assert isinstance(cfg, IdxTask)
        return load_idx(cfg)
    from regsearch.tasks.tabular import load_csv

    assert isinstance(cfg, CsvTask)
    return load_csv(cfg)
