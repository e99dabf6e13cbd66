"""The activation functions the MLP offers: one table, read by the config and by the models.

A module of its own with no imports, so that :mod:`regsearch.config` can list the allowed
values of ``model.activation`` without importing torch (about a second, five times what
``import regsearch.config`` costs); :mod:`regsearch.models` turns the class names into torch
modules.

Example:
    >>> ACTIVATIONS[:3], TORCH_CLASSES["leaky_relu"]
    (('relu', 'tanh', 'sigmoid'), 'LeakyReLU')
"""

from __future__ import annotations

__all__ = ["ACTIVATIONS", "TORCH_CLASSES"]

#: ``model.activation`` value → the ``torch.nn`` class put after every hidden layer.
TORCH_CLASSES: dict[str, str] = {
    "relu": "ReLU",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "gelu": "GELU",
    "elu": "ELU",
    "leaky_relu": "LeakyReLU",
    "identity": "Identity",
}
#: The allowed values of ``model.activation``.
ACTIVATIONS: tuple[str, ...] = tuple(TORCH_CLASSES)
