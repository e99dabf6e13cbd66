"""notebooks/explore_sweep.ipynb: stored without outputs, and runs on a tiny real sweep."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from regsearch.sweep import run_sweep
from tests.conftest import TINY

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "explore_sweep.ipynb"


def parameter_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The cell tagged ``parameters`` (papermill's convention), which sets ROOT."""
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    return cells[0]


def test_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert 'ROOT = "sweeps"' in parameter_cell(nb).source


@pytest.mark.slow
def test_notebook_runs_on_a_tiny_sweep(tmp_path: Path, make_config) -> None:
    root = tmp_path / "sweeps"
    cfg, yaml_text = make_config(
        root,
        "+sweep=dropout",
        *TINY,
        "search.n_trials=3",
        "search.repeats=2",
        "tracking=none",
        "report=false",
    )
    run_sweep(cfg, yaml_text)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    parameter_cell(nb).source = f"ROOT = {str(root)!r}"
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",  # ipykernel's own spec: runs this interpreter (the venv's)
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},  # as Jupyter would start it
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "the three figures"
    tables = [o for o in outputs if "text/html" in o.get("data", {})]
    assert tables, "the trials table"
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "dropout on moons" in printed
