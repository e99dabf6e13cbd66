"""Where a result came from: package versions, regsearch's version and commit, Python, the
device and the host, for ``summary.json``, the report's setup and the MLflow parent run.

Versions are read from the installed distributions' metadata (importing MLflow to ask it would
cost seconds); the commit is asked of git only when regsearch runs from a checkout.

Example:
    >>> found = provenance("cpu")
    >>> sorted(found.packages)[:3], found.python.count(".")
    (['hydra-core', 'mlflow', 'numpy'], 2)
"""

from __future__ import annotations

import functools
import platform
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "Provenance", "provenance"]

#: The distributions whose versions change what a sweep computes or records.
PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "optuna",
    "mlflow",
    "hydra-core",
    "omegaconf",
)
_SOURCE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Provenance:
    """The software and machine a sweep ran on."""

    regsearch: str  # version
    commit: str  # git commit of a source checkout ("+dirty" with local changes), else ""
    python: str
    platform: str
    host: str
    device: str  # the accelerator's name, or the CPU's
    packages: dict[str, str] = field(default_factory=dict)  # distribution → version

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values, for ``summary.json``."""
        return asdict(self)

    def tags(self) -> dict[str, str]:
        """MLflow tags (``regsearch.provenance.*``), one per fact and package."""
        flat = {k: str(v) for k, v in asdict(self).items() if k != "packages"}
        flat |= {f"package.{name}": version for name, version in self.packages.items()}
        return {f"regsearch.provenance.{k}": v for k, v in flat.items()}


def provenance(device: str) -> Provenance:
    """The provenance of a sweep running here on ``device`` (``cpu`` or ``cuda``)."""
    return Provenance(
        regsearch=_version("regsearch"),
        commit=_commit(),
        python=platform.python_version(),
        platform=platform.platform(),
        host=socket.gethostname(),
        device=_device_name(device),
        packages={name: _version(name) for name in PACKAGES if _version(name)},
    )


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def _commit() -> str:
    """The checkout's commit, ``+dirty`` when tracked files changed; "" for an installed wheel."""
    if not (_SOURCE / ".git").exists():
        return ""
    try:
        head = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{head}+dirty" if dirty else head


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(_SOURCE), *args], capture_output=True, text=True, timeout=5, check=True
    )
    return done.stdout.strip()


@functools.cache
def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return str(torch.cuda.get_device_name())
    cpu = _cpu_model() or platform.processor() or platform.machine()
    return f"{cpu} (cpu)"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""
