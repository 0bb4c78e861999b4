"""The quickstart notebook, executed end to end with a real kernel on the sample and the tiny checkpoint."""

from __future__ import annotations

import json

import nbformat
from nbclient import NotebookClient

from tests.helpers import ROOT, SAMPLE_ROOT

NOTEBOOK = ROOT / "experiments" / "notebooks" / "quickstart.ipynb"
PHOTO = ROOT / "tests" / "assets" / "sample_faces.jpg"


def _inject(nb: nbformat.NotebookNode, **params: object) -> None:
    """Override the cell tagged ``parameters`` with a cell right after it (papermill's convention)."""
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{name} = {value!r}" for name, value in params.items())
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))


def _text(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_committed_notebook_is_valid_and_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "clear the notebook's outputs"
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for name in ("CHECKPOINT", "DATA_ROOT", "CACHE_DIR", "PHOTO", "OUT_DIR"):
        assert f"\n{name} = " in "\n" + params.source


def test_quickstart_runs_end_to_end(tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    _inject(nb, CHECKPOINT=str(tiny_checkpoint), DATA_ROOT=str(SAMPLE_ROOT), CACHE_DIR=str(tmp_path / "cache"),
            PHOTO=str(PHOTO), OUT_DIR=str(out))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    text = _text(nb)
    assert "mini_xception: 56,951 parameters" in text
    assert "PrivateTest: 70 faces, accuracy " in text
    assert "most confident mistakes" in text
    n_faces = len(json.loads(PHOTO.with_suffix(".json").read_text()))
    assert f"sample_faces.jpg: {n_faces} faces" in text
    for name in ("confusion_matrix.png", "confident_mistakes.png", "sample_faces_annotated.png"):
        assert (out / name).stat().st_size > 5000, name
    shown = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(shown) == 3  # confusion matrix, mistakes, annotated photo
