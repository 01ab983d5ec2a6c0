"""The reproduction gate: every experiment notebook runs on the smoke tier through the real
runner (papermill), and its final metrics and curves must stay within the tolerances stored in
data/reference/<experiment>/smoke.json (see ci/reproduce.py)."""
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_tier_reproduces_references(tmp_path):
    out = tmp_path / "smoke"
    r = subprocess.run([sys.executable, str(ROOT / "ci" / "reproduce.py"), "--tier", "smoke", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=1500)
    print(r.stdout[-6000:], r.stderr[-3000:])
    assert r.returncode == 0, "smoke reproduction failed or left its tolerances (output above)"
    sys.path.insert(0, str(ROOT / "ci"))
    from reproduce import EXPERIMENTS
    for stem in EXPERIMENTS:
        status = json.loads((out / stem / "status.json").read_text())
        assert status["status"] == "complete", (stem, status)
        assert (out / stem / "results.json").exists() and (out / stem / "env.json").exists()
    assert (out / "10_pretrain" / "checkpoint.pt").exists()
    md = (out / "report" / "report.md").read_text()
    assert "## Figures of each run" in md and "efficiency.png" in md and "predictor_decoded.png" in md   # 15's figures, in the report
    assert all((out / "report" / l.split("](")[1].rstrip(")")).is_file() for l in md.splitlines() if l.startswith("![")) 


def _run(args, tmp_path):
    return subprocess.run([sys.executable, "-m", "jepa_nb.runner", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_checkpoint_experiments_refuse_missing_checkpoint(tmp_path):
    """11 and 12 take the checkpoint as an explicit parameter: empty or missing is a failed run whose error
    says what to pass, never a silent retrain."""
    for stem, extra, words in [("11_probe", [], "parameter 'checkpoint' is empty"),
                               ("12_jepa_score_ood", ["-p", f"checkpoint={tmp_path / 'nope.pt'}"], "checkpoint not found")]:
        rd = tmp_path / stem
        r = _run(["run", ROOT / "nbs" / f"{stem}.ipynb", "--tier", "smoke", "--run-dir", rd, *extra], tmp_path)
        assert r.returncode == 1, (stem, r.stdout[-2000:], r.stderr[-2000:])
        assert words in r.stderr, (stem, r.stderr[-2000:])
        status = json.loads((rd / "status.json").read_text())
        assert status["status"] == "failed" and words in status["error"]["evalue"], status
        assert not (rd / "results.json").exists() and not (rd / "checkpoint.pt").exists()
