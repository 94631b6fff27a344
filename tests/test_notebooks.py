"""The tutorial notebooks run top to bottom ("Run All") headless, with small parameters.

Each notebook's cell tagged ``parameters`` is followed by an injected cell that overrides some of its
values (as papermill does): a small synthetic cell, 4 epochs, few tiles. Notebooks 01-06 run in order
in one temporary folder (each reads what the previous ones wrote into ``WORKDIR``); the quick start,
and 06 (which then has to make every missing input itself), run alone in fresh folders. The
interactive widgets are shown but nobody clicks them, so every step's scripted fallback is exercised
(the simulated annotator fills the training sets). The executed notebooks are written to
``$TOMOWIDGETS_ARTIFACTS/notebooks/`` when that is set. About 2 minutes on 2 cores.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def executes(test):
    """Mark a test that executes notebooks: they train networks (TensorFlow) in a kernel (ipykernel)."""
    missing = [m for m in ("tensorflow", "ipykernel") if importlib.util.find_spec(m) is None]
    skip = pytest.mark.skipif(bool(missing), reason=f"{missing} not installed (pip install -e '.[test]')")
    for mark in (pytest.mark.tensorflow, pytest.mark.slow, skip):
        test = mark(test)
    return test


NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
STEPS = ["01_preprocess", "02_training_set", "03_train", "04_apply", "05_merge",
         "06_extract_and_average"]
KERNEL = "tomowidgets-test"
#: Small values for every notebook that declares them: ~10 ribosomes, 10 + 20 tiles, 4 epochs (the
#: fewest with which both networks reliably learn enough to be calibrated).
SMALL = {"SHAPE": (48, 160, 160), "FEATURES": ["membrane", "ribosome"], "N_NEGATIVE": 20, "EPOCHS": 4,
         "QUICK_EPOCHS": 4, "BOX": 16, "N_CLASSES": 2, "ITERATIONS": 2}


def parameters_of(nb) -> tuple[int, set[str]]:
    """Index of the cell tagged ``parameters`` and the names it assigns."""
    for index, cell in enumerate(nb.cells):
        if "parameters" in cell.metadata.get("tags", []):
            names = {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
                     for t in node.targets if isinstance(t, ast.Name)}
            return index, names
    raise AssertionError("no cell is tagged 'parameters'")


def inject(nb, params: dict) -> dict:
    """Insert a cell setting `params` after the parameters cell; returns the values injected."""
    index, declared = parameters_of(nb)
    chosen = {k: v for k, v in params.items() if k in declared}
    source = "# injected by tests/test_notebooks.py\n" + "\n".join(f"{k} = {v!r}" for k, v in chosen.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    cell.id = "injected-parameters"
    nb.cells.insert(index + 1, cell)
    return chosen


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, monkeypatch_module):
    """A kernel spec running this interpreter, so the notebooks see the installed tomowidgets."""
    spec = tmp_path_factory.mktemp("jupyter") / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tomowidgets test", "language": "python"}))
    monkeypatch_module.setenv("JUPYTER_PATH", str(spec.parent.parent))
    monkeypatch_module.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    return KERNEL


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def execute(name: str, cwd: Path, kernel: str, **params) -> tuple[object, float]:
    """Run notebook `name` in `cwd` (beside a copy of tutorial.py) with `params`; returns it and its time."""
    shutil.copy(NOTEBOOKS / "tutorial.py", cwd / "tutorial.py")
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    inject(nb, params)
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(nb, kernel_name=kernel, timeout=600,
                                     resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    finally:
        artifacts = os.environ.get("TOMOWIDGETS_ARTIFACTS")
        if artifacts:
            out = Path(artifacts) / "notebooks"
            out.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, out / f"{cwd.name}-{name}.ipynb")
    return nb, time.perf_counter() - t0


def printed(nb) -> str:
    """Everything the code cells printed."""
    return "\n".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                     for o in cell.get("outputs", []) if o.output_type == "stream")


def images(nb) -> int:
    """Number of pictures (PNG outputs) in the executed notebook."""
    return sum("image/png" in o.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for o in cell.get("outputs", []))


def test_every_notebook_has_a_parameters_cell_and_no_stored_outputs():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        _, declared = parameters_of(nb)
        synthetic = not path.name.startswith("08_real_cell")     # 08 reads a real tomogram
        assert {"WORKDIR", "SEED"} | ({"SHAPE"} if synthetic else set()) <= declared, path.name
        assert not [c for c in nb.cells if c.cell_type == "code" and (c.outputs or c.execution_count)], \
            f"{path.name}: clear the outputs before committing (Edit > Clear Outputs of All Cells)"


def test_notebooks_and_tutorial_py_pass_ruff():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    result = subprocess.run([ruff, "check", "notebooks"], cwd=NOTEBOOKS.parent, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def steps_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("steps")


@executes
@pytest.mark.parametrize("name", STEPS)
def test_step_notebooks_run_in_order(name, steps_dir, kernel):
    nb, seconds = execute(name, steps_dir, kernel, **SMALL)
    print(f"{name}: {seconds:.1f} s")
    assert images(nb) >= 1, f"{name} drew no picture"
    project = steps_dir / "project"
    expected = {
        "01_preprocess": ["project.json", "preprocessed.mrc", "cell/tomogram.mrc"],
        "02_training_set": ["membrane.tiles.npz", "ribosome.tiles.npz"],
        "03_train": ["membrane.keras", "ribosome.keras"],
        "04_apply": ["scores/preprocessed.membrane.mrc", "scores/preprocessed.ribosome.mrc"],
        "05_merge": ["labels.mrc", "labels.json"],
        "06_extract_and_average": ["ribosome.star", "ribosome.csv", "ribosome_average.mrc"],
    }[name]
    for file in expected:
        assert (project / file).is_file(), f"{name} did not write {file}"
    if name == "02_training_set":
        import tomowidgets as tw

        ts = tw.TrainingSet.load(project / "membrane.tiles.npz")
        assert (ts.n_positive, ts.n_negative) == (10, SMALL["N_NEGATIVE"])


@executes
def test_beyond_the_paper_runs_on_the_steps_project(steps_dir, kernel):
    # three annotators: a 4-epoch network can learn nothing, and the consensus needs two that did
    nb, seconds = execute("07_beyond_the_paper", steps_dir, kernel, **SMALL, ANNOTATORS=3, N_SUGGEST=4)
    print(f"07_beyond_the_paper: {seconds:.1f} s")
    assert images(nb) >= 2
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "consensus: Dice" in text and "competing (03): confusions" in text and "caps found" in text
    assert "trained alone: confusions" in text


@executes
def test_quickstart_runs_from_nothing(tmp_path, kernel):
    nb, seconds = execute("00_quickstart", tmp_path, kernel, **SMALL)
    print(f"00_quickstart: {seconds:.1f} s")
    assert images(nb) >= 3
    for file in ("preprocessed.mrc", "membrane.tiles.npz", "ribosome.keras", "labels.mrc",
                 "ribosome_average.mrc"):
        assert (tmp_path / "project" / file).is_file(), file


@executes
def test_the_last_notebook_alone_makes_what_is_missing(tmp_path, kernel):
    """Opened on its own, 06 makes the cell, the training sets, quick networks and score maps."""
    # its stand-in networks learn from the paper's 10 + 100 tiles: one epoch holds enough SGD steps
    nb, seconds = execute("06_extract_and_average", tmp_path, kernel, **{**SMALL, "QUICK_EPOCHS": 1})
    print(f"06_extract_and_average alone: {seconds:.1f} s")
    text = printed(nb)
    assert "holds no project yet" in text and "training a quick stand-in" in text
    for file in ("membrane.tiles.npz", "ribosome.keras", "scores/preprocessed.ribosome.mrc",
                 "ribosome_average.mrc"):
        assert (tmp_path / "project" / file).is_file(), file


@executes
def test_the_real_cell_notebook_runs_on_the_shipped_crop(tmp_path, kernel):
    """08 on the 9.4 MB crop of EMPIAR-10499 shipped for Binder, with the saved training sets."""
    nb, seconds = execute("08_real_cell", tmp_path, kernel, DATA=str(NOTEBOOKS / "real_cell"),
                          FULL_CELL=str(tmp_path / "absent.mrc"), EPOCHS=4, ITERATIONS=2, N_CLASSES=2)
    print(f"08_real_cell: {seconds:.1f} s")
    text = printed(nb)
    assert "empiar10499_TS00254_crop20A.mrc" in text and "gold:" in text and "Nyquist limit 40 Å" in text
    assert "ribosome picks" in text and images(nb) >= 4
    assert (tmp_path / "real_cell_project" / "preprocessed.mrc").is_file()
