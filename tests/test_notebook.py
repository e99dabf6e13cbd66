"""notebooks/explore_sweep.ipynb: stored without outputs; runs a tiny sweep through
``regsearch.run`` and explores it, then reopens it from its run folder."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import TINY

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "explore_sweep.ipynb"
#: A dropout sweep of a few seconds: 3 trials x 2 seeds, holdout, then baseline and the best
#: dropout retrained on 2 fresh seeds.
OVERRIDES = [
    "+sweep=dropout",
    *TINY,
    "search.n_trials=3",
    "search.repeats=2",
    "search.cv=0",
    "sweep.final_seeds=2",
    "tracking=none",
    "report=false",
]


def parameter_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The cell tagged ``parameters`` (papermill's convention), which sets ROOT and OVERRIDES."""
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    return cells[0]


def execute(root: Path, overrides: list[str]) -> list[nbformat.NotebookNode]:
    """Run the notebook with these parameters, as Jupyter would; returns the code outputs."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    parameter_cell(nb).source = f"ROOT = {str(root)!r}\nOVERRIDES = {overrides!r}"
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",  # ipykernel's own spec: runs this interpreter (the venv's)
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},  # as Jupyter would start it
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs


def printed(outputs: list[nbformat.NotebookNode]) -> str:
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


def test_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    source = parameter_cell(nb).source
    assert 'ROOT = "sweeps"' in source and 'OVERRIDES = ["+sweep=dropout"]' in source
    sources = "\n".join(c.source for c in code)
    assert "regsearch.run(*OVERRIDES, root=root)" in sources
    assert "compose(" not in sources and "run_sweep" not in sources  # the public API only


@pytest.mark.slow
def test_notebook_runs_a_tiny_sweep_then_reopens_it(tmp_path: Path) -> None:
    root = tmp_path / "sweeps"
    outputs = execute(root, OVERRIDES)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "the three figures"
    tables = [o for o in outputs if "text/html" in o.get("data", {})]
    assert tables, "the trials table"
    text = printed(outputs)
    assert "dropout on moons" in text and "finished" in text
    openings = ("Clear winner:", "Likely better:", "Keep baseline:", "Undecided:")
    assert any(o in text for o in openings)  # the verdict of the final phase, whatever its tier
    (run_dir,) = root.glob("dropout-moons/*")
    assert str(run_dir) in text
    assert (run_dir / "trials.csv").is_file() and not (run_dir / "report.html").exists()

    # No overrides: nothing runs, the newest run folder under ROOT is opened from its stores.
    again = printed(execute(root, []))
    assert f"dropout on moons - {run_dir}" in again
    assert list(root.glob("dropout-moons/*")) == [run_dir]
