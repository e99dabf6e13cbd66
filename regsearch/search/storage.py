"""Optuna storages from URLs: one object per URL and process, drivers chosen, races retried.

``search.storage`` takes any Optuna URL, a sqlite URL (its folder is created) or a journal file
path (``*.journal`` / ``*.log``). Workers started together race to create the schema; opening is
retried with a jittered backoff, and whatever still fails is a one-line ConfigError.

Example:
    >>> storage = get_storage("sqlite:///sweeps/optuna.db")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import random
import time
from pathlib import Path

import optuna

from regsearch.config import ConfigError
from regsearch.urls import POSTGRES_EXTRA, is_journal, sqlite_path

__all__ = ["STORAGE_ATTEMPTS", "get_storage"]

_STORAGES: dict[str, optuna.storages.BaseStorage] = {}


def get_storage(url: str) -> optuna.storages.BaseStorage:
    """One storage object per URL and process: opening an RDB storage costs ~1 s."""
    if url not in _STORAGES:
        _STORAGES[url] = _make_storage(url)
    return _STORAGES[url]


#: Opening a storage is retried this many times: workers started together race to create
#: its tables (PostgreSQL: UniqueViolation; sqlite: alembic_version UNIQUE), and the loser
#: finds them made on the next try.
STORAGE_ATTEMPTS = 6


def _make_storage(url: str) -> optuna.storages.BaseStorage:
    """Open the storage at ``url``, retrying start-up races with a jittered backoff.

    Raises:
        ConfigError: No driver for the URL, or the storage still cannot be opened (a server
            that does not answer, wrong credentials) after the retries.
    """
    import sqlalchemy.exc

    url = _with_driver(url)
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            return _open_storage(url)
        except ImportError as err:
            raise ConfigError(f"search.storage={url!r}: {_driver_hint(url, err)}") from err
        except sqlalchemy.exc.ArgumentError as err:  # an unknown dialect or driver name
            raise ConfigError(f"search.storage={url!r}: not a database URL: {err}") from err
        except (sqlalchemy.exc.DBAPIError, optuna.exceptions.StorageInternalError) as err:
            if attempt == STORAGE_ATTEMPTS - 1:
                first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
                raise ConfigError(f"search.storage={url!r}: cannot open it: {first}") from err
            time.sleep(0.1 * 2**attempt * (0.5 + random.random()))
    raise AssertionError("unreachable")


def _open_storage(url: str) -> optuna.storages.BaseStorage:
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(
            url,
            # Several sweeps may share one sqlite file; wait for the lock instead of failing.
            engine_kwargs={"connect_args": {"timeout": 60}},
            # A file about to be created has the current schema; checking it would import
            # alembic (~0.4 s). Existing files are still checked.
            skip_compatibility_check=not path.exists(),
        )
    if is_journal(url):
        from optuna.storages.journal import JournalFileBackend

        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(url))
    return optuna.storages.get_storage(url)


def _with_driver(url: str) -> str:
    """``postgresql://`` means psycopg2 to SQLAlchemy; use psycopg 3 (the ``postgres`` extra)
    when only that one is installed."""
    if url.startswith("postgresql://") and not _installed("psycopg2") and _installed("psycopg"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _driver_hint(url: str, err: ImportError) -> str:
    cause = err.__cause__ or err
    if url.startswith("postgresql"):
        return f"no PostgreSQL driver ({cause}); {POSTGRES_EXTRA} (psycopg 3)"
    return f"no database driver for this URL ({cause}); install the one SQLAlchemy names"
