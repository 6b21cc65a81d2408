"""notebooks/compare.ipynb runs headless on a tiny fake sweep."""

import nbformat
from helpers import ROOT
from nbclient import NotebookClient
from sweep_fakes import write_fake_sweep


def test_compare_notebook_executes(tmp_path, monkeypatch):
    sweep_dir = tmp_path / "sweep"
    write_fake_sweep(sweep_dir)
    monkeypatch.setenv("GENLAB_SWEEP_DIR", str(sweep_dir))
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))  # the kernel imports this checkout's genlab
    notebook = nbformat.read(ROOT / "notebooks" / "compare.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    text = "".join(output.get("text", "") for output in outputs)
    assert "wins on fid" in text and str(sweep_dir / "report.md") in text
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 3  # 2 curve figures, 1 samples
    assert (sweep_dir / "report.csv").is_file()
