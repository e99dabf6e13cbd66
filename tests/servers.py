"""Real servers for tests: a throw-away PostgreSQL cluster and an MLflow tracking server.

Both listen on 127.0.0.1 on a free port, live in a tmp dir and are stopped by PID at teardown.
A missing PostgreSQL skips its tests with the reason, unless ``REGSEARCH_REQUIRE_SERVERS`` is
set (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["free_port", "mlflow_server", "postgres_server", "postgres_url"]

REQUIRE = "REGSEARCH_REQUIRE_SERVERS"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE):
        pytest.fail(f"{reason} ({REQUIRE} is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def _pg_bin() -> Path | None:
    """The newest PostgreSQL server binaries (Debian keeps them off PATH)."""
    for bin_dir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(bin_dir, "initdb").exists() and Path(bin_dir, "pg_ctl").exists():
            return Path(bin_dir)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and Path(found).with_name("initdb").exists() else None


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the ``postgres`` OS user then."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _wait_for_port(port: int, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port}: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop one server by its PID, then make sure it is gone."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A fresh PostgreSQL cluster; yields the base URL ``postgresql+psycopg://...:<port>``.

    Each test makes its own database (:func:`postgres_url`).
    """
    bin_dir = _pg_bin()
    if bin_dir is None:
        _unavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg not installed (pip install -e '.[dev]')")
    assert bin_dir is not None
    # Directly under the system tmp dir: pytest's tmp dirs are private to root, and the
    # postgres user must reach its data dir.
    root = Path(tempfile.mkdtemp(prefix="regsearch-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            _as_postgres(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(data),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-k",
                    str(root),  # the unix socket stays in the tmp dir
                    "-c",
                    "max_connections=200",
                    "-c",
                    "fsync=off",  # a test cluster: speed over durability
                ]
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, 30, "postgres", log)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        # "Fast" shutdown (SIGINT) of the postmaster, by the PID it wrote; runuser then exits.
        pid_file = data / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
        _stop(server, signal.SIGINT)
        shutil.rmtree(root, ignore_errors=True)


def postgres_url(server: str, database: str) -> str:
    """A new, empty database on the test cluster; returns its URL."""
    import psycopg

    plain = server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{plain}/postgres", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{database}"')
        con.execute(f'CREATE DATABASE "{database}"')
    return f"{server}/{database}"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` on a sqlite backend; yields its ``http://127.0.0.1:<port>`` URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port, log = free_port(), root / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{root}/mlflow.db",
                "--artifacts-destination",
                str(root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
            start_new_session=True,  # its workers are stopped with it, by the group's id
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{uri}/health", server, log, timeout=90)
        yield uri
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the group this fixture started, by its id
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)


def wait_for_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Wait until ``url`` answers 200; raise with the end of ``log`` if ``process`` exits first
    or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up: {log.read_text()[-3000:]}")
        time.sleep(0.3)
