"""regsearch.urls: parsing storage/tracking URLs, and the checks that run before a store opens."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from regsearch.config import ConfigError
from regsearch.urls import (
    POSTGRES_EXTRA,
    absolute_sqlite,
    browse_command,
    check_storage_url,
    check_tracking_uri,
    folder_problem,
    is_http,
    is_journal,
    sqlite_path,
)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///sweeps/optuna.db", Path("sweeps/optuna.db")),
        ("sqlite:////abs/optuna.db", Path("/abs/optuna.db")),
        ("sqlite+pysqlite:///x.db?timeout=3", Path("x.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql://u@h/db", None),
        ("sweeps/optuna.journal", None),
        ("http://127.0.0.1:5000", None),
        ("not a url", None),
        ("", None),
    ],
)
def test_sqlite_path(url: str, path: Path | None) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////abs/optuna.db", "sqlite:////abs/optuna.db"),
        ("postgresql://u:secret@h/db", "postgresql://u:secret@h/db"),  # untouched, password too
        ("sweeps/s.journal", "sweeps/s.journal"),
        ("http://h:5000", "http://h:5000"),
    ],
)
def test_absolute_sqlite_leaves_other_urls_alone(url: str, expected: str) -> None:
    assert absolute_sqlite(url) == expected


def test_absolute_sqlite_resolves_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_sqlite("sqlite:///sweeps/o.db") == f"sqlite:///{tmp_path}/sweeps/o.db"
    assert absolute_sqlite("sqlite:///o.db?timeout=9") == f"sqlite:///{tmp_path}/o.db?timeout=9"


@pytest.mark.parametrize(
    ("uri", "http"),
    [
        ("http://127.0.0.1:5000", True),
        ("https://mlflow.example.org/", True),
        ("HTTPS://mlflow.example.org", True),
        ("sqlite:///m.db", False),
        ("databricks", False),
        ("./mlruns", False),
        ("", False),
    ],
)
def test_is_http(uri: str, http: bool) -> None:
    assert is_http(uri) == http


@pytest.mark.parametrize(
    ("url", "journal"),
    [("s.journal", True), ("a/b/s.log", True), ("sqlite:///s.journal", False), ("s.db", False)],
)
def test_is_journal(url: str, journal: bool) -> None:
    assert is_journal(url) == journal


@pytest.mark.parametrize(
    ("uri", "command"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("https://m.example.org", "https://m.example.org"),
        ("sqlite:///sweeps/mlflow.db", "mlflow ui --backend-store-uri sqlite:///sweeps/mlflow.db"),
        ("sqlite:///my runs/m.db", "mlflow ui --backend-store-uri 'sqlite:///my runs/m.db'"),
    ],
)
def test_browse_command(uri: str, command: str) -> None:
    assert browse_command(uri) == command


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    """A regular file: a path under it cannot be a folder, whoever runs the tests."""
    path = tmp_path / "afile"
    path.write_text("x")
    return path


def test_folder_problem(tmp_path: Path, afile: Path) -> None:
    assert folder_problem(tmp_path) == ""
    assert folder_problem(tmp_path / "new" / "deeper") == ""  # created later, not now
    assert not (tmp_path / "new").exists()
    assert folder_problem(afile) == f"{afile} is a file, not a folder"
    assert folder_problem(afile / "sub" / "x") == f"{afile} is a file, not a folder"
    assert folder_problem(Path("relative/below/cwd")) == ""


@pytest.fixture
def immutable_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can write, root included (``chattr +i``); skipped where unsupported."""
    folder = tmp_path / "frozen"
    folder.mkdir()
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr not available: root ignores permission bits, so no read-only folder")
    done = subprocess.run([chattr, "+i", str(folder)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i not permitted here ({done.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_folder_problem_of_a_read_only_folder(immutable_dir: Path) -> None:
    assert folder_problem(immutable_dir / "sub") == f"{immutable_dir} is not writable"
    with pytest.raises(ConfigError, match="is not writable"):
        check_storage_url(f"sqlite:///{immutable_dir}/o.db")


# (url, text the message must contain); a folder named FILE is a regular file.
BAD_STORAGE = [
    ("", "give an Optuna storage"),
    ("not-a-url", "not a storage URL"),
    ("postgresql://u@h:port/db", "not a storage URL"),
    ("foo://x", "unknown database 'foo'"),
    ("http://127.0.0.1:5000", "unknown database 'http'"),
    ("postgresql+nope://u@h/db", "unknown driver 'nope' for postgresql"),
    ("sqlite://", "in-memory"),
    ("sqlite:///:memory:", "in-memory"),
    ("sqlite:///FILE/o.db", "is a file, not a folder"),
    ("sqlite:///TMP", "is a folder; name a file"),
    ("FILE/sub/s.journal", "is a file, not a folder"),
    ("postgresql+psycopg://u@127.0.0.1:1/db", "cannot reach the database server at 127.0.0.1:1"),
    ("postgresql+psycopg://u:s3cret@127.0.0.1:1/db", "u:***@"),  # the password is not printed
]


@pytest.mark.parametrize(
    ("url", "message"), BAD_STORAGE, ids=[u or "empty" for u, _ in BAD_STORAGE]
)
def test_bad_storage_is_one_line(url: str, message: str, tmp_path: Path, afile: Path) -> None:
    url = url.replace("FILE", str(afile)).replace("TMP", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        check_storage_url(url, "search.storage")
    text = str(info.value)
    assert text.startswith("search.storage=") and message in text
    assert "\n" not in text and "s3cret" not in text
    assert afile.read_text() == "x" and sorted(tmp_path.iterdir()) == [afile]  # nothing written


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///TMP/new/folder/o.db",
        "sqlite:///TMP/existing.db",
        "sqlite+pysqlite:///TMP/o.db?timeout=5",
        "TMP/sub/s.journal",
        "TMP/s.log",
    ],
)
def test_good_storage_is_accepted_without_writing(url: str, tmp_path: Path) -> None:
    (tmp_path / "existing.db").write_bytes(b"")
    check_storage_url(url.replace("TMP", str(tmp_path)))
    assert [p.name for p in tmp_path.iterdir()] == ["existing.db"]


def test_resume_needs_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such database to resume from"):
        check_storage_url(f"sqlite:///{tmp_path}/o.db", must_exist=True)
    with pytest.raises(ConfigError, match="no such database to resume from"):
        check_storage_url(f"{tmp_path}/s.journal", must_exist=True)
    (tmp_path / "o.db").write_bytes(b"")
    check_storage_url(f"sqlite:///{tmp_path}/o.db", must_exist=True)


@pytest.mark.skipif(
    importlib.util.find_spec("psycopg2") is not None, reason="psycopg2 is installed here"
)
def test_missing_driver_names_what_to_install() -> None:
    with pytest.raises(ConfigError, match=r"driver 'psycopg2' is not installed") as info:
        check_storage_url("postgresql+psycopg2://u@127.0.0.1:1/db")
    assert POSTGRES_EXTRA in str(info.value)


def test_missing_psycopg_names_the_extra() -> None:
    """psycopg made unimportable in a fresh interpreter: the message is the extra to install."""
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from regsearch.urls import check_storage_url\n"
        "try:\n"
        "    check_storage_url('postgresql://u@127.0.0.1:1/db')\n"
        "except ValueError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "search.storage='postgresql://u@127.0.0.1:1/db': the postgresql driver 'psycopg' is "
        f"not installed; {POSTGRES_EXTRA}"
    )


BAD_TRACKING = [
    ("", "tracking.backend=none"),
    ("./mlruns", "file stores are no longer supported"),
    ("file:///tmp/mlruns", "file stores are no longer supported"),
    ("sqlite:///FILE/m.db", "is a file, not a folder"),
    ("sqlite://", "in-memory"),
    ("mysql+pymysql://u@127.0.0.1:1/db", "mysql"),  # driver missing or server unreachable
    ("http://127.0.0.1:1", "cannot reach the MLflow server at 127.0.0.1:1"),
    ("http://:5000", "no host"),
]


@pytest.mark.parametrize(
    ("uri", "message"), BAD_TRACKING, ids=[u or "empty" for u, _ in BAD_TRACKING]
)
def test_bad_tracking_uri_is_one_line(uri: str, message: str, afile: Path) -> None:
    with pytest.raises(ConfigError) as info:
        check_tracking_uri(uri.replace("FILE", str(afile)))
    text = str(info.value)
    assert text.startswith("tracking.uri=") and message in text and "\n" not in text


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:PORT",  # a server that accepts connections (nothing is sent)
        "databricks",
        "sqlite:///TMP/m.db",
    ],
)
def test_good_tracking_uri(uri: str, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        check_tracking_uri(uri.replace("TMP", str(tmp_path)).replace("PORT", str(port)))
    assert list(tmp_path.iterdir()) == []
