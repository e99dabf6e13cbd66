"""Where the stores live: the one place storage and tracking URLs are parsed and checked.

Optuna's storage (``search.storage``) is a SQLAlchemy database URL or a journal file path
(``*.journal`` / ``*.log`` without ``://``); MLflow's tracking URI (``tracking.uri``) is a
database URL or an ``http(s)://`` server. Every URL is parsed here with SQLAlchemy's
:func:`~sqlalchemy.engine.make_url`, and the checks run before either store is opened, so bad
input costs one :class:`~regsearch.config.ConfigError` line instead of a traceback and a
half-made store. Nothing here writes: folders are checked, not created.

Example:
    >>> sqlite_path("sqlite:///sweeps/optuna.db")
    PosixPath('sweeps/optuna.db')
    >>> is_http("https://mlflow.example.org"), is_http("sqlite:///m.db")
    (True, False)
"""

from __future__ import annotations

import os
import shlex
import socket
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from regsearch.errors import ConfigError

__all__ = [
    "CONNECT_TIMEOUT_S",
    "JOURNAL_SUFFIXES",
    "POSTGRES_EXTRA",
    "absolute_sqlite",
    "browse_command",
    "check_storage_url",
    "check_tracking_uri",
    "folder_problem",
    "is_http",
    "is_journal",
    "sqlite_path",
]

#: Seconds a database server gets to accept a TCP connection before it counts as unreachable.
CONNECT_TIMEOUT_S = 3.0
#: A storage path with one of these suffixes (and no ``://``) is an Optuna journal file.
JOURNAL_SUFFIXES = (".journal", ".log")
#: What installs the PostgreSQL driver (psycopg 3) the ``postgresql://`` URLs use by default.
POSTGRES_EXTRA = "pip install 'regsearch[postgres]'"
#: Ports of database servers whose URL names a host but no port.
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}
#: pip names of drivers whose import name differs.
_PIP_NAMES = {"MySQLdb": "mysqlclient", "psycopg2": "psycopg2-binary", "cx_Oracle": "cx-Oracle"}
_STORAGE_FORMS = (
    "sqlite:///<file>.db, postgresql://<user>@<host>/<db>, mysql+pymysql://<user>@<host>/<db> "
    "or a <file>.journal path"
)
_TRACKING_FORMS = "sqlite:///<file>.db, postgresql://<user>@<host>/<db> or http(s)://<server>"


def _parse(url: str) -> URL | None:
    """The URL, or None when SQLAlchemy cannot parse it (a bad port is a ValueError)."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def _shown(url: str) -> str:
    """``url`` for a message: quoted, its password (if any) masked."""
    parsed = _parse(url)
    return repr(url if parsed is None or not parsed.password else parsed.render_as_string())


def is_journal(url: str) -> bool:
    """Whether ``url`` names an Optuna journal file (``*.journal``/``*.log``, not a URL)."""
    return "://" not in url and url.endswith(JOURNAL_SUFFIXES)


def sqlite_path(url: str) -> Path | None:
    """The file of a sqlite URL (as written: relative stays relative); None for anything else.

    Example:
        >>> sqlite_path("sqlite:////tmp/o.db"), sqlite_path("sqlite://"), sqlite_path("x.journal")
        (PosixPath('/tmp/o.db'), None, None)
    """
    parsed = _parse(url)
    if parsed is None or parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def absolute_sqlite(url: str) -> str:
    """A relative sqlite URL made absolute, so a run folder can be reopened from anywhere.

    Any other URL is returned unchanged (passwords included).

    Example:
        >>> absolute_sqlite("sqlite:////tmp/o.db"), absolute_sqlite("postgresql://h/db")
        ('sqlite:////tmp/o.db', 'postgresql://h/db')
    """
    path = sqlite_path(url)
    if path is None or path.is_absolute():
        return url
    parsed = make_url(url).set(database=str(path.resolve()))
    return parsed.render_as_string(hide_password=False)


def is_http(uri: str) -> bool:
    """Whether ``uri`` is an ``http://`` or ``https://`` server (e.g. an MLflow tracking server)."""
    parsed = _parse(uri)
    return parsed is not None and parsed.drivername.lower() in ("http", "https")


#: The port ``mlflow ui`` listens on unless told otherwise (``tracking.ui_port``).
DEFAULT_UI_PORT = 5000


def browse_command(uri: str, experiment_id: str = "", port: int = DEFAULT_UI_PORT) -> str:
    """How to look at an MLflow store: a server's page, or ``mlflow ui`` and the page to open.

    The page is the experiment's runs table (``workflowType=machine_learning``): MLflow 3.17's
    UI opens every experiment in its GenAI view unless the link or the sidebar switch says
    otherwise, whatever the experiment's ``mlflow.experimentKind`` tag.

    Example:
        >>> browse_command("http://127.0.0.1:5000", "3")
        'http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning'
        >>> browse_command("sqlite:///sweeps/mlflow.db", "1")
        'mlflow ui --backend-store-uri sqlite:///sweeps/mlflow.db, then open http://127.0.0.1:5000/#/experiments/1?workflowType=machine_learning'
        >>> browse_command("sqlite:///sweeps/mlflow.db")
        'mlflow ui --backend-store-uri sqlite:///sweeps/mlflow.db'
        >>> browse_command("sqlite:///sweeps/mlflow.db", "1", port=5001)  # doctest: +ELLIPSIS
        'mlflow ui --backend-store-uri sqlite:///sweeps/mlflow.db --port 5001, then open http://127.0.0.1:5001/#/...'
    """
    page = f"#/experiments/{experiment_id}?workflowType=machine_learning" if experiment_id else ""
    if is_http(uri):
        return f"{uri.rstrip('/')}/{page}" if page else uri
    command = f"mlflow ui --backend-store-uri {shlex.quote(uri)}"
    if port != DEFAULT_UI_PORT:
        command += f" --port {port}"
    return f"{command}, then open http://127.0.0.1:{port}/{page}" if page else command


def folder_problem(folder: Path) -> str:
    """Why files cannot be created in ``folder`` (created when missing), or ``""`` if they can.

    Looks at the nearest existing folder up the path: it must be a folder and writable. Root
    ignores permission bits, but not the immutable attribute (``chattr +i``).

    Example:
        >>> folder_problem(Path("/proc/version/sub"))
        '/proc/version is a file, not a folder'
    """
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return ""


def _check_file(path: Path, key: str, url: str, must_exist: bool) -> None:
    """A store file: creatable in its folder (or, to resume, there already) and writable."""
    if path.is_dir():
        raise ConfigError(f"{key}={_shown(url)}: {path} is a folder; name a file")
    if must_exist and not path.exists():
        raise ConfigError(f"{key}={_shown(url)}: no such database to resume from")
    problem = folder_problem(path.parent)
    if problem:
        raise ConfigError(f"{key}={_shown(url)}: cannot create {path.name} there: {problem}")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{key}={_shown(url)}: {path} is read-only")


def _install_hint(backend: str, driver: str, module: str) -> str:
    pip = f"pip install {_PIP_NAMES.get(module, module)}"
    if backend != "postgresql":
        return pip
    if driver == "psycopg":
        return POSTGRES_EXTRA
    return f"{POSTGRES_EXTRA} and write postgresql://... (psycopg), or {pip}"


def _check_driver(parsed: URL, key: str, url: str, forms: str) -> None:
    """The dialect is known to SQLAlchemy and its driver imports."""
    backend = parsed.get_backend_name()
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        if "+" in parsed.drivername:
            what = f"unknown driver {parsed.drivername.split('+', 1)[1]!r} for {backend}"
        else:
            what = f"unknown database {backend!r}"
        raise ConfigError(f"{key}={_shown(url)}: {what}; allowed: {forms}") from None
    try:
        dialect.import_dbapi()
    except ImportError as err:
        module = (err.name or str(dialect.driver)).split(".")[0]
        hint = _install_hint(backend, str(dialect.driver), module)
        raise ConfigError(
            f"{key}={_shown(url)}: the {backend} driver {module!r} is not installed; {hint}"
        ) from None


def _check_reachable(parsed: URL, key: str, url: str) -> None:
    """A TCP connection to the server's port opens within :data:`CONNECT_TIMEOUT_S`.

    Cheap and credential-free: no session, no schema, nothing written. A URL without a host
    (a local socket) is left to the driver.
    """
    host = parsed.host
    port = parsed.port or _DEFAULT_PORTS.get(parsed.get_backend_name())
    if not host or port is None:
        return
    _require_tcp(host, port, f"{key}={_shown(url)}", "database server", "start it or fix the URL")


def _check_http_reachable(uri: str, key: str) -> None:
    """An MLflow server must accept a TCP connection: MLflow's client would otherwise retry
    each request for minutes (backoff) before the sweep could tell the user."""
    parts = urlsplit(uri)
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConfigError(f"{key}={_shown(uri)}: the port is not a number") from None
    if not host:
        raise ConfigError(f"{key}={_shown(uri)}: no host; allowed: {_TRACKING_FORMS}")
    remedy = "start it (mlflow server ...), fix the URI or set tracking=none"
    _require_tcp(host, port, f"{key}={_shown(uri)}", "MLflow server", remedy)


def _require_tcp(host: str, port: int, setting: str, server: str, remedy: str) -> None:
    """Raise a ConfigError naming ``setting`` (``key=value``) when the server is unreachable."""
    reason = _tcp_problem(host, port)
    if reason:
        raise ConfigError(
            f"{setting}: cannot reach the {server} at {host}:{port} ({reason}); {remedy}"
        )


def _tcp_problem(host: str, port: int) -> str:
    """Why a TCP connection to ``host:port`` does not open in time; empty when it does."""
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except socket.gaierror:
        return "unknown host"
    except TimeoutError:
        return f"no answer within {CONNECT_TIMEOUT_S:g} s"
    except OSError as err:
        return (err.strerror or type(err).__name__).lower()
    return ""


def _check_database(parsed: URL, key: str, url: str, forms: str, must_exist: bool) -> None:
    _check_driver(parsed, key, url, forms)
    if parsed.get_backend_name() != "sqlite":
        _check_reachable(parsed, key, url)
        return
    path = sqlite_path(url)
    if path is None:
        raise ConfigError(
            f"{key}={_shown(url)}: an in-memory database is lost with the process that wrote it; "
            "name a file: sqlite:///<file>.db"
        )
    _check_file(path, key, url, must_exist)


def check_storage_url(url: str, key: str = "search.storage", *, must_exist: bool = False) -> None:
    """Check that Optuna can open ``url`` before anything opens it.

    Args:
        url: A SQLAlchemy database URL or a journal file path (see :func:`is_journal`).
        key: The config key named in the message.
        must_exist: The store is resumed: a sqlite or journal file must already be there
            (opening a missing one would create it empty).

    Raises:
        ConfigError: One line: an unparseable URL, an unknown database or driver, a driver
            that is not installed (with the pip command), a sqlite/journal file whose folder
            cannot be created or written, or a server that does not accept connections.

    Example:
        >>> check_storage_url("postgresql+psycopg://u@127.0.0.1:1/db")  # doctest: +SKIP
        ConfigError: search.storage='postgresql+psycopg://u@127.0.0.1:1/db': cannot reach ...
    """
    if not url:
        raise ConfigError(f"{key}={url!r}: give an Optuna storage: {_STORAGE_FORMS}")
    if is_journal(url):
        _check_file(Path(url), key, url, must_exist)
        return
    parsed = _parse(url)
    if parsed is None:
        raise ConfigError(f"{key}={url!r}: not a storage URL; allowed: {_STORAGE_FORMS}")
    _check_database(parsed, key, url, _STORAGE_FORMS, must_exist)


def check_tracking_uri(uri: str, key: str = "tracking.uri") -> None:
    """Check an MLflow tracking URI before anything opens it.

    ``http(s)://`` servers must accept a TCP connection (nothing is sent; ``databricks`` is
    not contacted); database URLs get the checks of :func:`check_storage_url`. MLflow no
    longer accepts file stores.

    Raises:
        ConfigError: One line naming ``key``, the URI and the forms allowed.
    """
    if not uri:
        raise ConfigError(
            f"{key}={uri!r}: give the MLflow store ({_TRACKING_FORMS}) or set tracking.backend=none"
        )
    if is_http(uri):
        _check_http_reachable(uri, key)
        return
    if uri.split(":", 1)[0] in ("databricks", "databricks-uc"):
        return
    parsed = _parse(uri)
    if parsed is None or parsed.get_backend_name() == "file":
        raise ConfigError(
            f"{key}={_shown(uri)}: MLflow needs a database or a server (file stores are no "
            f"longer supported); allowed: {_TRACKING_FORMS}"
        )
    _check_database(parsed, key, uri, _TRACKING_FORMS, must_exist=False)
