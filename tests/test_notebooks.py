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


def test_the_next_links_visit_every_notebook_in_order():
    "Each lesson and experiment ends with a '## Next' section whose first link is the following notebook (the last: the index)."
    import re
    nbs = sorted(p.name for p in (ROOT / "nbs").glob("[0-9][0-9]*.ipynb"))
    for here, there in zip(nbs, nbs[1:] + ["index.ipynb"]):
        cells = json.loads((ROOT / "nbs" / here).read_text())["cells"]
        nexts = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown" and "## Next" in "".join(c["source"])]
        assert nexts, f"{here} has no '## Next' section"
        links = re.findall(r"\]\(([^)#]+\.ipynb)\)", nexts[-1].split("## Next", 1)[1])
        assert links and links[0] == there, f"{here}: '## Next' links first to {links[:1]}, expected {there}"
        assert (ROOT / "nbs" / links[0]).is_file()


def test_no_file_outside_the_repository_is_referenced():
    "Docs, notebooks and code point only inside the repository (no '../shared/...')."
    files = [*ROOT.glob("*.md"), *(ROOT / "nbs").glob("*.ipynb"), *(ROOT / "ci").glob("*"), *(ROOT / "jepa_nb").rglob("*.py")]
    bad = [f.relative_to(ROOT) for f in files if f.is_file() and "../shared" in f.read_text(errors="ignore")]
    assert not bad, f"these point outside the repository (../shared): {bad}"


def test_make_help_lists_every_target_and_main_installs_no_browser():
    "Every Makefile target has a `## ...` line in `make help`; `make main` does not run apt-get (only `make test` needs Chromium)."
    import re
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    helped = set(re.findall(r"^\s*make ([a-z-]+)\s", subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True,
                                                                     text=True, check=True).stdout, re.M))
    assert targets and targets == helped, f"targets without a help line: {sorted(targets - helped)}"
    dry = subprocess.run(["make", "-n", "main", "STAMP=/dev/null"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "apt-get" not in dry and "ci/reproduce.py" in dry, dry


def test_every_relative_link_of_the_readme_and_results_page_exists():
    "README.md and data/reference/RESULTS.md link only to files that are in the repository."
    import re
    for page in (ROOT / "README.md", ROOT / "data" / "reference" / "RESULTS.md"):
        links = [l for l in re.findall(r"\]\(([^)\s]+)\)", page.read_text()) if not l.startswith(("http", "#"))]
        missing = [l for l in links if not (page.parent / l.split("#")[0]).exists()]
        assert links and not missing, f"{page.name}: links to missing files {missing}"
