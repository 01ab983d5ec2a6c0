"""Notebook hygiene that nbdev's test runner cannot check on itself."""
import json, shutil, subprocess, sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_clean_keeps_parameters_tag(tmp_path):
    "nbdev-clean with our pyproject keeps papermill's `parameters` tag but drops other metadata (nbdev issue #600)."
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "nbs").mkdir()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("seed = 0  # random seed")
    cell.metadata = {"tags": ["parameters"], "collapsed": True, "scrolled": True}
    nb.cells = [cell, nbformat.v4.new_code_cell("print(seed)")]
    nb.cells[1].metadata = {"ExecuteTime": {"start": "x"}}
    f = tmp_path / "nbs" / "10_x.ipynb"
    nbformat.write(nb, f)
    subprocess.run([str(BIN / "nbdev-clean"), "--fname", str(f)], cwd=tmp_path, check=True)
    cells = json.loads(f.read_text())["cells"]
    assert cells[0]["metadata"] == {"tags": ["parameters"]}
    assert cells[1]["metadata"] == {}


def test_lessons_export_one_module_each():
    "Each lesson notebook (00-09) declares exactly one default_exp; experiments (10+) export nothing."
    for nb in sorted((ROOT / "nbs").glob("[0-9][0-9]_*.ipynb")):
        srcs = ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        exps = [s for s in srcs if s.lstrip().startswith("#| default_exp")]
        exports = [s for s in srcs if s.lstrip().startswith("#| export")]
        if int(nb.name[:2]) < 10:
            assert len(exps) == 1, f"{nb.name}: {len(exps)} default_exp cells"
            assert exports, f"{nb.name} exports nothing"
        else:
            assert not exps and not exports, f"experiment {nb.name} must not export"
            assert not any("import *" in s for s in srcs), nb.name


def test_no_star_imports_in_lessons():
    for nb in sorted((ROOT / "nbs").glob("0[0-9]_*.ipynb")):
        for c in json.loads(nb.read_text())["cells"]:
            assert "import *" not in "".join(c["source"]), f"{nb.name} uses import *"


def test_every_parameter_line_is_read_by_papermill():
    "Each `name = value` line of an experiment's parameters cell is a parameter papermill sees (a comment holding `=` hides it)."
    sys.path.insert(0, str(ROOT))
    from jepa_nb.runner import notebook_params
    for nb in sorted((ROOT / "nbs").glob("1[0-9]_*.ipynb")):
        cell = next(c for c in json.loads(nb.read_text())["cells"] if "parameters" in c["metadata"].get("tags", []))
        declared = [l.split("=")[0].strip() for l in "".join(cell["source"]).splitlines() if l.strip() and not l.startswith("#")]
        missing = sorted(set(declared) - set(notebook_params(nb)))
        assert not missing, f"{nb.name}: papermill cannot read the parameter line(s) of {missing} (no `=` in their comments)"
