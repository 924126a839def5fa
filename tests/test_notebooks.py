"""Every notebook in notebooks/ runs top to bottom at the small scale, draws its figures, raises
nothing; and the committed notebooks carry no outputs (they are source, not results).

The kernel is this interpreter, whatever kernels the machine has installed: the test writes a
throwaway kernelspec that runs `sys.executable -m ipykernel_launcher` and points JUPYTER_PATH
at it, and the notebook's last (extra) cell reports the kernel's `sys.executable` to check.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
KERNEL = "brokerlab-test-python"
# What a notebook may import of sim: the public API (`help(sim)`), the lab, and for the failure
# notebook the model checker's broker replay and the mutant catalogue (public modules too).
PUBLIC = {"sim", "sim.lab", "sim.lab.plots", "sim.lab.theory", "sim.checking.exhaustive",
          "sim.checking.mutants"}  # fmt: skip


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    spec = tmp_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "brokerlab test", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("BROKERLAB_NOTEBOOK_SCALE", "small")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return KERNEL


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/*.ipynb not found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_draws(path: Path, kernel: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = NotebookClient(
        nb, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    errors = [out for out in outputs if out.output_type == "error"]
    assert not errors, errors[0].get("evalue")
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not any("Traceback" in text for text in stderr), stderr
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    plotting_cells = sum("show(" in cell.source for cell in nb.cells if cell.cell_type == "code")
    assert len(images) >= plotting_cells > 0, f"{len(images)} figures from {plotting_cells} cells"
    assert outputs[-1].text.strip() == sys.executable  # the kernel was this interpreter


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_imports_only_the_public_api(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    modules = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    ours = {m for m in modules if m.split(".")[0] == "sim"}
    assert ours and ours <= PUBLIC, ours - PUBLIC
