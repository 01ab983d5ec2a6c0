"""End-to-end tests of the `jepa-nb` command line (jepa_nb.runner) on a toy experiment notebook.

Every CLI call is a real subprocess (`python -m jepa_nb.runner ...`, and the installed `jepa-nb`
script once). Each call pays papermill's import (~2 s) and each run a kernel start (~3 s), so the
independent calls are launched together once per module (`calls`) and the tests read their results."""
import csv, json, os, shutil, statistics, subprocess, sys
from pathlib import Path

import nbformat
import pytest

from jepa_nb.runner import check_run, write_reference

CLI = [sys.executable, "-m", "jepa_nb.runner"]

PARAMS = '''seed = 0              # random seed
lr = 0.1              # step size (diverges above 2)
n = 10                # steps
name = "toy"          # a label
crop = [0.3, 1.0]     # a list parameter
flag = False          # a bool parameter
note_file = None      # a path to read (anything goes: None default)
fail = False          # raise half-way
jam = False           # make the run's notebook.ipynb unwritable (a folder in its place), as a full disk would
nproc = 1             # processes (the runner checks it against the machine)
batch_size = 8        # images per step (the runner checks it against nproc and n_train)
n_train = 0           # images (0: all)
run_dir = ""          # run folder (set by the runner)'''

BODY = '''import csv, json, os, random, sys
from pathlib import Path
out = Path(run_dir or "toy_run"); out.mkdir(parents=True, exist_ok=True)
(out / "config.json").write_text(json.dumps(dict(seed=seed, lr=lr, n=n)))
rng = random.Random(seed)
w = [1 + 0.1 * rng.gauss(0, 1) for _ in range(8)]
losses = []
with open(out / "metrics.csv", "w", newline="") as f:
    log = csv.writer(f); log.writerow(["step", "loss"])
    for step in range(n + 1):
        loss = 0.5 * sum(v * v for v in w) / len(w)
        log.writerow([step, loss]); f.flush(); losses.append(loss)
        if jam and step == n // 2:
            nbf = out / "notebook.ipynb"; nbf.unlink(); (nbf / "blocker").mkdir(parents=True)
        if fail and step == n // 2: raise ValueError(f"boom at step {step}")
        if not loss < 1e3: raise FloatingPointError(f"loss diverged at step {step}")
        w = [v - lr * (v + 0.3 * rng.gauss(0, 1)) for v in w]
echo = dict(seed=seed, lr=lr, n=n, name=name, crop=crop, flag=flag, note_file=note_file,
            note_text=Path(note_file).read_text() if note_file else None, cwd=os.getcwd(), prefix=sys.prefix)
(out / "results.json").write_text(json.dumps(dict(final_loss=losses[-1], min_loss=min(losses), name=name, echo=echo)))'''


def launch(*args, cwd, exe=None, env=None):
    "Start the command line in the background."
    return subprocess.Popen([*([exe] if exe else CLI), *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=None if env is None else {**os.environ, **env})


def finish(p):
    "Wait for a launched command; return it as a CompletedProcess."
    out, err = p.communicate(timeout=300)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def cli(*args, cwd, exe=None):
    "Run the command line; return the CompletedProcess (text)."
    return finish(launch(*args, cwd=cwd, exe=exe))


BAD = {  # id: (arguments, what the one line on stderr must say); all stop before a kernel starts
    "unknown": (["--tier", "smoke", "-p", "lrr=0.1"], ["unknown parameter 'lrr'", "did you mean 'lr'",
                                                    "; see them all: jepa-nb params nbs/toy.ipynb"]),
    "wrong-type": (["--tier", "smoke", "-p", "seed=0.5", "-p", "flag=1"], ["'seed' expects int (default 0), got float 0.5",
                                                                        "'flag' expects bool", "see them all: jepa-nb params"]),
    "bad-tier-file": (["--tier", "gpu"], ["gpu.json", "unknown parameter 'seeed'", "did you mean 'seed'"]),
    "tier-case": (["--tier", "SMOKE"], ["unknown tier 'SMOKE' for toy (did you mean 'smoke'?): choose smoke | cpu | gpu"]),
    "cannot-start": (["--tier", "smoke", "-p", "note_file=data/nothing.txt", "-p", "name=folder:imgs", "-p", "nproc=0", "-p", "n_train=3"],
                     ["toy.ipynb cannot start: name (-p): no such folder ", "/imgs; ", "note_file (-p): no such file ",
                      "/data/nothing.txt; check the path (a relative -p path is read from the folder you run jepa-nb in",
                      "nproc is 0: it must be at least 1", "n_train 3 is smaller than one batch (batch_size 8)"]),
    "nproc-many": (["--tier", "smoke", "-p", "nproc=512", "-p", "batch_size=1024"], ["nproc is 512 but ", "or fewer"]),
    "occupied-run-dir": (["--tier", "smoke", "--run-dir", "runs/occupied"], ["runs/occupied is not empty", "--overwrite"]),
}


@pytest.fixture(scope="module")
def proj(tmp_path_factory):
    "A project: nbs/toy.ipynb with tier files, data/artifact.txt; CLI calls run from its root."
    root = tmp_path_factory.mktemp("proj")
    (root / "nbs" / "params" / "toy").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(PARAMS); p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("print('started')"), p, nbformat.v4.new_code_cell(BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    nbformat.write(nb, root / "nbs" / "toy.ipynb")
    (root / "nbs" / "params" / "toy" / "smoke.json").write_text('{"n": 8}')
    (root / "nbs" / "params" / "toy" / "gpu.json").write_text('{"n": 8, "seeed": 1}')
    (root / "data").mkdir()
    (root / "data" / "artifact.txt").write_text("an artifact of an earlier run")
    (root / "runs" / "occupied").mkdir(parents=True)
    (root / "runs" / "occupied" / "keep.txt").write_text("an earlier run")
    damaged_runs(root / "runs" / "damaged", root / "nbs" / "toy.ipynb")
    return root


def damaged_runs(d: Path, nb: Path):
    "Run folders with damaged files: a status.json cut short, a results.json holding a list, an empty params.json; one sound."
    def run(name, status='{"status": "complete"}', results='{"final_loss": 1.0}', params=None):
        (d / name).mkdir(parents=True)
        (d / name / "params.json").write_text(params if params is not None else json.dumps(
            dict(notebook=str(nb), experiment="toy", tier="smoke", params=dict(seed=0, lr=0.1))))
        (d / name / "status.json").write_text(status); (d / name / "results.json").write_text(results)
        (d / name / "metrics.csv").write_text("step,loss\n0,1.0\n1,0.5\n")
    run("sound")
    run("cut_status", status='{"status": "comp')
    run("list_results", results="[0.5, 0.6]")
    run("empty_params", params="", status='{"status": "failed", "experiment": "toy", "tier": "smoke"}')


@pytest.fixture(scope="module")
def calls(proj):
    "The independent CLI calls, launched at once: a good run, a failing run, a sweep, the bad-input runs."
    procs = dict(
        good=launch("run", "nbs/toy.ipynb", "--tier", "smoke", "-p", "seed=3", "-p", "lr=2e-1", "-p", "name=foo", "-p", "crop=[0.5,1.0]",
                    "-p", "flag=true", "-p", "note_file=data/artifact.txt", "--runs-root", "runs", cwd=proj),
        failed=launch("run", "nbs/toy.ipynb", "--tier", "smoke", "-p", "fail=true", "--run-dir", "runs/failed", cwd=proj),
        sweep=launch("sweep", "nbs/toy.ipynb", "--tier", "smoke", "-p", "seed=0,1", "-p", "lr=0.1,3.0", "-q",
                     "--sweep-dir", "runs/sweep", cwd=proj),
        jammed=launch("run", "nbs/toy.ipynb", "--tier", "smoke", "-p", "fail=true", "-p", "jam=true", "--run-dir", "runs/jammed", "-q",
                      cwd=proj),
        damaged_report=launch("report", "runs/damaged", "--out", "runs/damaged-report", cwd=proj),
        damaged_resume=launch("resume", "runs/damaged/empty_params", cwd=proj),
        version=launch("--version", cwd=proj),
        debug=launch("run", "nbs/toy.ipynb", "--tier", "SMOKE", cwd=proj, env={"JEPA_NB_DEBUG": "1"}),
        **{k: launch("run", "nbs/toy.ipynb", *args, "--runs-root", f"runs/bad-{k}", cwd=proj) for k, (args, _) in BAD.items()})
    return {k: finish(p) for k, p in procs.items()}


@pytest.fixture(scope="module")
def good(calls):
    r = calls["good"]
    assert r.returncode == 0, r.stderr
    return r, Path(r.stdout.strip().splitlines()[-1].removeprefix("complete: "))


@pytest.fixture(scope="module")
def failed(calls): return calls["failed"]


@pytest.fixture(scope="module")
def swept(calls): return calls["sweep"]


def sweep_runs(proj, lr):
    return [Path(r["run_dir"]) for r in json.loads((proj / "runs/sweep/sweep.json").read_text())["runs"] if r["params"]["lr"] == lr]


def test_run_complete(proj, good):
    r, rd = good
    assert rd.parent == proj / "runs" / "toy" and rd.name.startswith("smoke-")
    assert json.loads((rd / "status.json").read_text())["status"] == "complete"
    pj = json.loads((rd / "params.json").read_text())
    assert pj["experiment"] == "toy" and pj["tier"] == "smoke"
    assert pj["sources"] == dict(seed="cli", lr="cli", n="tier", name="cli", crop="cli", flag="cli", note_file="cli", fail="default",
                                 jam="default", nproc="default", batch_size="default", n_train="default", run_dir="runner")
    echo = json.loads((rd / "results.json").read_text())["echo"]
    # the notebook received the typed -p values, the tier's n, and the artifact path made absolute from the caller's folder
    assert echo | dict(cwd=None, prefix=None) == dict(seed=3, lr=0.2, n=8, name="foo", crop=[0.5, 1.0], flag=True,
                                                      note_file=str(proj / "data/artifact.txt"), note_text="an artifact of an earlier run",
                                                      cwd=None, prefix=None)
    assert echo["cwd"] == str(proj / "nbs")            # papermill runs in the notebook's folder
    assert echo["prefix"] == sys.prefix                # the kernel is this venv's python
    assert len(list(csv.DictReader(open(rd / "metrics.csv")))) == 9
    executed = nbformat.read(rd / "notebook.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_stops_before_running(proj, calls, case):
    r = calls[case]
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()     # the error is one line (after the run's own first line when it got that far)
    assert lines[-1].startswith("jepa-nb run: error: ") and len(lines) <= 2 and "Traceback" not in r.stderr, r.stderr
    for e in BAD[case][1]: assert e in r.stderr, (e, r.stderr)
    assert not (proj / f"runs/bad-{case}").exists()                                  # nothing created
    assert [p.name for p in (proj / "runs/occupied").iterdir()] == ["keep.txt"]      # nothing replaced


def test_failed_run_is_kept_and_marked(proj, failed):
    assert failed.returncode == 1
    assert "run failed" in failed.stderr and "ValueError: boom at step 4" in failed.stderr
    rd = proj / "runs" / "failed"
    st = json.loads((rd / "status.json").read_text())
    assert st["status"] == "failed" and st["error"]["ename"] == "ValueError" and "boom at step 4" in st["error"]["traceback"]
    cells = [c for c in nbformat.read(rd / "notebook.ipynb", as_version=4).cells if c.cell_type == "code"]
    assert cells[0].source == "print('started')" and cells[0].outputs[0]["text"] == "started\n"   # earlier cells ran, kept
    assert cells[-1].outputs[-1]["output_type"] == "error" and cells[-1].outputs[-1]["ename"] == "ValueError"
    assert len(list(csv.DictReader(open(rd / "metrics.csv")))) == 5  # partial output of the notebook kept
    assert not (rd / "results.json").exists()


def test_sweep_continues_after_failure(proj, swept):
    assert swept.returncode == 1 and "2 of 4 runs failed" in swept.stderr
    sj = json.loads((proj / "runs/sweep/sweep.json").read_text())
    assert [(r["params"], r["status"]) for r in sj["runs"]] == [
        ({"seed": 0, "lr": 0.1}, "complete"), ({"seed": 0, "lr": 3.0}, "failed"),
        ({"seed": 1, "lr": 0.1}, "complete"), ({"seed": 1, "lr": 3.0}, "failed")]
    for r in sj["runs"]:
        st = json.loads(Path(r["run_dir"], "status.json").read_text())
        assert st["status"] == r["status"] and Path(r["run_dir"], "notebook.ipynb").exists()
        if r["status"] == "failed": assert "diverged" in r["error"] and st["error"]["ename"] == "FloatingPointError"
    table = [l for l in swept.stdout.splitlines() if "/runs/sweep/0" in l]      # the summary table's rows
    assert [("complete" in l, "failed" in l) for l in table] == [(True, False), (False, True)] * 2
    assert "sweep.json" in swept.stdout


def test_report_mean_std_over_seeds(proj, good, swept):
    r = cli("report", "runs/sweep", good[1], "--out", "runs/report", cwd=proj)
    assert r.returncode == 1 and "2 run(s) failed, were interrupted or are unreadable" in r.stderr, r.stderr   # written, and says so
    out = proj / "runs/report"
    for f in ["report.md", "report.html", "summary.csv", "curves_toy.png", "final_toy.png"]:
        assert (out / f).stat().st_size > 0, f
    import pandas as pd
    s = pd.read_csv(out / "summary.csv")
    vals = [json.loads((d / "results.json").read_text())["final_loss"] for d in sweep_runs(proj, 0.1)]
    row = s[s.group.str.contains("lr=0.1") & (s.metric == "final_loss")]
    assert len(row) == 1 and row.n.item() == 2
    assert row["mean"].item() == pytest.approx(statistics.mean(vals)) and row["std"].item() == pytest.approx(statistics.stdev(vals))
    assert set(s.metric) == {"final_loss", "min_loss"}            # only numeric scalar results
    assert sorted(s[s.metric == "final_loss"].n) == [1, 2]        # the good run is its own group; failed runs are left out
    md = (out / "report.md").read_text()
    cell = f"{statistics.mean(vals):.4g} ± {statistics.stdev(vals):.2g}"
    assert cell in md and md.count("| failed |") == 2
    assert cell in (out / "report.html").read_text()


def test_check_against_reference(proj, swept):
    ref_root = proj / "reference"
    runs = sweep_runs(proj, 0.1)
    ref_file = write_reference(runs, ref_root / "toy" / "smoke.json")
    ref = json.loads(ref_file.read_text())
    assert ref["n_seeds"] == 2 and ref["curve"]["steps"] == list(range(9))
    assert ref["metrics"]["final_loss"]["tol"] == pytest.approx(3 * ref["spread"]["final_loss"]["std"])
    assert all(c.ok for c in check_run(runs[0], ref_root))

    exe = shutil.which("jepa-nb", path=str(Path(sys.executable).parent))
    assert exe, "the jepa-nb console script is not installed (pip install -e .)"
    r = cli("check", runs[0], runs[1], "--reference", ref_root, cwd=proj, exe=exe)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all 6 checks passed" in r.stdout and "curve:loss" in r.stdout

    bad = dict(ref, metrics={**ref["metrics"], "final_loss": {**ref["metrics"]["final_loss"]}})
    bad["metrics"]["final_loss"]["value"] += 5 * bad["metrics"]["final_loss"]["tol"] + 1e-6
    (ref_root / "shifted" / "toy").mkdir(parents=True)
    (ref_root / "shifted" / "toy" / "smoke.json").write_text(json.dumps(bad))
    r = cli("check", runs[0], "--reference", ref_root / "shifted", cwd=proj)
    assert r.returncode == 1
    fails = [l for l in r.stdout.splitlines() if "FAIL" in l]
    assert len(fails) == 1 and "final_loss" in fails[0] and "outside tolerance" in fails[0]

    failed_member = sweep_runs(proj, 3.0)[0]
    r = cli("check", failed_member, proj / "runs/nowhere", "--reference", ref_root, cwd=proj)
    assert r.returncode == 1 and "2 of 2 checks failed" in r.stderr
    assert "run failed: FloatingPointError" in r.stdout and "run folder not found" in r.stdout


def test_experiments_by_name():
    "`jepa-nb list` shows the course's experiments and tiers; a name resolves to its notebook; an unknown one lists the known."
    root = Path(__file__).resolve().parents[1]
    listed, unknown, params = (launch("list", cwd=root), launch("run", "pretrian", "--tier", "smoke", cwd=root),
                               launch("params", "pretrain", "--tier", "smoke", cwd=root / "nbs"))
    listed, unknown, params = finish(listed), finish(unknown), finish(params)
    assert listed.returncode == 0, listed.stderr
    rows = {l.split()[0]: l for l in listed.stdout.splitlines()[2:]}
    assert "nbs/10_pretrain.ipynb" in rows["pretrain"] and "smoke, cpu, gpu" in rows["pretrain"]
    assert set(rows) >= {"pretrain", "probe", "jepa_score_ood"}
    assert unknown.returncode == 2 and not unknown.stdout
    for e in ["pretrian", "did you mean 'pretrain'", "pretrain (10_pretrain)", "probe (11_probe)"]: assert e in unknown.stderr, (e, unknown.stderr)
    assert params.returncode == 0, params.stderr
    assert "run_dir: str" in params.stdout and "tier smoke: {" in params.stdout


def test_unsaved_notebook_still_reports_the_kernels_error(proj, calls):
    "papermill cannot save the run's notebook (a folder took its place, as a full disk stops a save): the kernel's error and cell win."
    r = calls["jammed"]
    assert r.returncode == 1, r.stderr
    assert "run failed: toy.ipynb failed in cell [" in r.stderr and "ValueError: boom at step 4" in r.stderr, r.stderr
    assert "notebook.ipynb keeps its last saved state: could not write" in r.stderr and "Traceback" not in r.stderr
    rd = proj / "runs" / "jammed"
    st = json.loads((rd / "status.json").read_text())
    assert st["status"] == "failed" and st["error"]["ename"] == "ValueError" and isinstance(st["error"]["cell"], int), st
    assert "could not write" in st["error"]["notebook"]
    assert not list(rd.glob("*.tmp")) and not (rd / ".lock").exists()


def test_damaged_run_files_are_named_not_fatal(proj, calls):
    "A report over runs with damaged files marks each `unreadable`, naming the file, and reports the rest; resume names the file."
    r, d = calls["damaged_report"], proj / "runs" / "damaged"
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    for f, words in [("cut_status/status.json", "is not valid JSON, cut short"), ("list_results/results.json", "holds a JSON array, not an object"),
                     ("empty_params/params.json", "is empty")]:
        assert f"unreadable: {d / f.split('/')[0]}: {d / f} {words}" in r.stderr, (f, r.stderr)
    assert "3 run(s) failed, were interrupted or are unreadable" in r.stderr
    import pandas as pd
    s = pd.read_csv(proj / "runs/damaged-report/summary.csv")
    assert s.metric.tolist() == ["final_loss"] and s.n.tolist() == [1]                     # the sound run, alone
    assert (proj / "runs/damaged-report/report.md").read_text().count("| unreadable |") == 3
    res = calls["damaged_resume"]
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert (f"error: {d / 'empty_params' / 'params.json'} is empty; without its parameters the run cannot be resumed: start it again: "
            f"jepa-nb run toy --tier smoke --run-dir {d / 'empty_params'} --overwrite") in res.stderr, res.stderr


def test_version_help_and_debug(calls):
    "`--version`; every error is one line, and JEPA_NB_DEBUG=1 (said in --help) lets the traceback through."
    import jepa_nb
    from jepa_nb.runner.cli import _parser
    assert calls["version"].returncode == 0 and calls["version"].stdout.strip() == f"jepa-nb {jepa_nb.__version__}"
    assert "JEPA_NB_DEBUG=1" in _parser().format_help()
    d = calls["debug"]
    assert d.returncode == 1 and "Traceback (most recent call last)" in d.stderr and "ParamError: unknown tier 'SMOKE'" in d.stderr
