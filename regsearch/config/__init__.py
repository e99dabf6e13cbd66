"""Config: schemas (Hydra ConfigStore dataclasses), their registration, and validation.

Every run is checked before any store is touched: :func:`validate` turns a composed Hydra
config into typed dataclasses and raises :class:`ConfigError` with one line naming the key,
the bad value and what is allowed. The modules, along the data flow: ``schema`` (dataclasses
and allowed values), ``store`` (ConfigStore registration), ``keys`` (schema introspection for
messages), ``validation`` (the checks). :class:`ConfigError` lives in :mod:`regsearch.errors`, below
every module that raises it.

Example:
    >>> from omegaconf import OmegaConf
    >>> cfg = validate(OmegaConf.create({"task": {"name": "moons"}}))
    >>> cfg.task.noise
    0.5
"""

from __future__ import annotations

from regsearch import errors
from regsearch.config import keys, schema, store, validation
from regsearch.config.keys import *  # noqa: F403
from regsearch.config.schema import *  # noqa: F403
from regsearch.config.store import *  # noqa: F403
from regsearch.config.validation import *  # noqa: F403
from regsearch.errors import *  # noqa: F403

# The public names of each module, listed once there.
__all__ = [
    *errors.__all__,
    *keys.__all__,
    *schema.__all__,
    *store.__all__,
    *validation.__all__,
]

store.register_configs()  # composing any regsearch config needs the schemas in the store
