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
    # ci/probe_noise.py refits the run's own probes (it exits 1 if its margins differ from results.json) and brackets them
    r = subprocess.run([sys.executable, str(ROOT / "ci" / "probe_noise.py"), str(out / "10_pretrain"), "--n-boot", "500"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((out / "10_pretrain" / "results.json").read_text())
    rows = [l.split(" | ") for l in r.stdout.splitlines() if l.startswith(f"| {out / '10_pretrain'} |")]
    assert [row[2] for row in rows] == ["linear", "knn", "linear_white", "knn_white"], r.stdout
    keys = ("linear_margin", "knn_margin", "linear_margin_white", "knn_margin_white")   # the last two: lesson 07's whiten=True
    for row, key in zip(rows, keys):
        lo, hi = (float(v) for v in row[5].split(" .. "))
        assert float(row[3]) == round(100 * res[key], 1) and lo <= float(row[3]) <= hi, row
    # the smoke run's two encoders differ on some digits: under one plain probe at least (2 epochs of single-block masking
    # can leave the linear probe's predictions unchanged on all 1,000, while the kNN's move)
    assert any(float(row[4]) > 0 for row in rows[:2]), rows
    # --online probes I-JEPA's context encoder (nothing recorded to check against); a method with one encoder is refused
    r = subprocess.run([sys.executable, str(ROOT / "ci" / "probe_noise.py"), str(out / "10_pretrain"), str(out / "10_pretrain_lejepa"),
                        "--n-boot", "200", "--online"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "has no separate online and target encoder" in r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
    online = [l.split(" | ")[2] for l in r.stdout.splitlines() if l.startswith(f"| {out / '10_pretrain'} |")]
    assert online == ["linear", "knn", "linear_white", "knn_white"] and "not its probes" not in r.stdout, r.stdout
    # --low-shot: the low-shot probe's margin over the twin per draw of labelled images (the README's 5-shot note)
    r = subprocess.run([sys.executable, str(ROOT / "ci" / "probe_noise.py"), str(out / "10_pretrain"), "--low-shot", "5",
                        "--draws", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = [l.rstrip(" |").split(" | ") for l in r.stdout.splitlines() if l.startswith(f"| {out / '10_pretrain'} |")]
    assert [(row[2], row[3]) for row in rows] == [("5", "0"), ("5", "1")], r.stdout
    for row in rows:      # each margin is its two accuracies' difference (printed to 3 decimals)
        assert abs(float(row[6]) - 100 * (float(row[4]) - float(row[5]))) <= 0.11, row
    assert "(5 per class): margin mean" in r.stdout, r.stdout


def _run(args, tmp_path):
    return subprocess.run([sys.executable, "-m", "jepa_nb.runner", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_checkpoint_experiments_refuse_missing_checkpoint(tmp_path):
    """11 and 12 take the checkpoint as an explicit parameter: empty is a failed run whose error says what to pass,
    never a silent retrain; a path that does not exist is refused before a kernel starts, leaving no run folder."""
    rd = tmp_path / "11_probe"
    r = _run(["run", ROOT / "nbs" / "11_probe.ipynb", "--tier", "smoke", "--run-dir", rd], tmp_path)
    assert r.returncode == 1 and "parameter 'checkpoint' is empty" in r.stderr, r.stderr[-2000:]
    status = json.loads((rd / "status.json").read_text())
    assert status["status"] == "failed" and "parameter 'checkpoint' is empty" in status["error"]["evalue"], status
    assert not (rd / "results.json").exists() and not (rd / "checkpoint.pt").exists()
    rd = tmp_path / "12_jepa_score_ood"
    r = _run(["run", ROOT / "nbs" / "12_jepa_score_ood.ipynb", "--tier", "smoke", "--run-dir", rd, "-p", f"checkpoint={tmp_path / 'nope.pt'}"],
             tmp_path)
    assert r.returncode == 2 and f"cannot start: checkpoint (-p): no such file {tmp_path / 'nope.pt'}" in r.stderr, r.stderr[-2000:]
    assert not rd.exists()


# --- 11 and 12 with a timm encoder (`encoder="timm:<name>"`), offline: a small timm ViT, random or from a local file ---
TIMM = "vit_tiny_patch16_224"
TIMM_SMALL = {"img_size": 32, "patch_size": 4, "embed_dim": 64, "depth": 2, "num_heads": 4}   # CPU-sized: 64 tokens, width 64


def _run_timm(stem, rd, *params, encoder=f"timm:{TIMM}"):
    "Run experiment `stem` on the smoke tier with `encoder` (TIMM_SMALL) and extra `-p` params, with the hubs offline."
    import os
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    args = ["run", ROOT / "nbs" / f"{stem}.ipynb", "--tier", "smoke", "--run-dir", rd, "-p", f"encoder={encoder}",
            "-p", "timm_kwargs=" + json.dumps(TIMM_SMALL), *[a for p in params for a in ("-p", p)]]
    return subprocess.run([sys.executable, "-m", "jepa_nb.runner", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)


def _save_small_timm(path, **kw):
    "Save the state dict of a randomly initialised TIMM_SMALL ViT to `path`; return the model."
    import timm, torch
    model = timm.create_model(TIMM, num_classes=0, **TIMM_SMALL, **kw).eval()
    torch.save(model.state_dict(), path)
    return model


def test_timm_weights_file_is_loaded(tmp_path):
    """`checkpoint=` with a timm encoder: the file's weights, unchanged, in an RGB model fed the grey data with the
    weights' statistics; the twin is another draw; a bad name, spec or file is refused naming it."""
    import pytest, torch
    from jepa_nb.data import load_data
    from jepa_nb.eval import timm_experiment_encoder, timm_spec
    src = _save_small_timm(tmp_path / "vit.pth")
    enc, twin, tf = timm_experiment_encoder(TIMM, tmp_path / "vit.pth", load_data("mnist5k", "train"), **TIMM_SMALL)
    want, got = src.state_dict(), enc.model.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(v, got[k]) for k, v in want.items())
    assert not torch.equal(twin.model.state_dict()["blocks.0.attn.qkv.weight"], want["blocks.0.attn.qkv.weight"])
    assert tf.in_chans == 3 and tf.transform.mean == tuple(src.pretrained_cfg["mean"])
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        timm_experiment_encoder(TIMM, tmp_path / "nope.pth", **TIMM_SMALL)
    with pytest.raises(RuntimeError, match="vit.pth"):              # weights of another architecture
        timm_experiment_encoder(TIMM, tmp_path / "vit.pth", **{**TIMM_SMALL, "depth": 3})
    with pytest.raises(ValueError, match="unknown timm model 'vit_nonexistent'"):
        timm_spec("timm:vit_nonexistent")
    with pytest.raises(ValueError, match="timm:<model name>"):
        timm_spec(TIMM)


def test_probe_runs_with_a_timm_weights_file(tmp_path):
    """11 on the smoke tier with a timm encoder read from a local file: the probed features are the file's model
    on the test images (effective rank and feature std recomputed here, from the file, with plain torch)."""
    import torch, torch.nn.functional as F
    from jepa_nb.data import load_data
    from jepa_nb.monitors import effective_rank, feature_std
    model = _save_small_timm(tmp_path / "vit.pth")
    rd = tmp_path / "11_probe"
    r = _run_timm("11_probe", rd, f"checkpoint={tmp_path / 'vit.pth'}")
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    res = json.loads((rd / "results.json").read_text())
    assert res["method"] == f"timm:{TIMM}" and "checkpoint_step" not in res
    assert json.loads((rd / "config.json").read_text())["timm_kwargs"] == TIMM_SMALL
    x = load_data("mnist5k", "test").images[:300].float() / 255          # the smoke tier's n_test, grey 28 px
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).expand(-1, 3, -1, -1)
    mean, std = (torch.tensor(model.pretrained_cfg[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    with torch.no_grad(): f = model.forward_features((x - mean) / std)[:, model.num_prefix_tokens:].mean(1)
    assert abs(res["effective_rank"] - effective_rank(f)) < 1e-3 * effective_rank(f), (res["effective_rank"], effective_rank(f))
    assert abs(res["mean_std"] - float(feature_std(f).mean())) < 1e-4
    assert abs(res["effective_rank_random_init"] - res["effective_rank"]) > 1e-3   # the twin is not the loaded model
    for k, v in res.items():
        if k.endswith("_acc") or "_acc_" in k: assert 0 <= v <= 1, (k, v)


def test_jepa_score_runs_with_a_random_timm_encoder(tmp_path):
    """12 with a randomly initialised timm encoder (smoke tier, fewer images so it stays small): complete, finite,
    and recorded as the timm encoder it scored."""
    import math
    rd = tmp_path / "12_jepa_score_ood"
    r = _run_timm("12_jepa_score_ood", rd, "n_id=16", "n_ood=16", 'ood_sets=["noise", "digits"]', "n_gauss=64", "n_fit=200",
                  "n_inv=4", "curation_per_class=2", "rare_n_train=128", "rare_epochs=1", "rare_n_test=24", "rare_rate=0.2")
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    res = json.loads((rd / "results.json").read_text())
    assert res["encoder"] == f"timm:{TIMM}" and "checkpoint_step" not in res
    assert all(math.isfinite(v) for v in res.values() if isinstance(v, float)), res
    assert all(0 <= res[f"auroc_{k}{s}"] <= 1 for k in ("noise", "digits") for s in ("", "_untrained", "_knn", "_invariant"))
    assert res["score_id_std"] > 0 and (rd / "shapes_checkpoint.pt").exists()


def test_runs_side_by_side_behave_like_runs_in_turn(tmp_path, capsys):
    """ci/reproduce.py's --jobs: two at a time, every command runs, each one's whole output is printed under its own
    command line, and the first failure's exit status comes back; one at a time stops at the first failure."""
    sys.path.insert(0, str(ROOT / "ci"))
    from reproduce import default_jobs, sh_all
    mark = tmp_path / "ran"
    cmds = [[sys.executable, "-c", f"import time; time.sleep(0.3); print('first'); open(r'{mark}1', 'w'); raise SystemExit(3)"],
            [sys.executable, "-c", f"print('second'); open(r'{mark}2', 'w')"]]
    assert sh_all(cmds, jobs=2) == 3
    out = capsys.readouterr().out
    assert (tmp_path / "ran1").exists() and (tmp_path / "ran2").exists()
    blocks = out.split("\n+ ")                       # "+ (started) ..." twice, then each command with its output
    assert out.index("first") < out.index("second") and "exit 3" in out and "exit 0" in out, out
    assert sum("(started)" in b for b in blocks) == 2, out
    (tmp_path / "ran2").unlink()
    assert sh_all(cmds, jobs=1) == 3 and not (tmp_path / "ran2").exists()          # in turn: stops at the failure
    assert sh_all(cmds, jobs=1, keep_going=True) == 3 and (tmp_path / "ran2").exists()
    assert default_jobs("smoke") == 1 and default_jobs("gpu") == 1 and 1 <= default_jobs("cpu") <= 2


def test_probe_noise_refuses_a_folder_that_is_not_a_run(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "ci" / "probe_noise.py"), str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "not an experiment-10 run folder with checkpoint.pt and params.json" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, str(ROOT / "ci" / "probe_noise.py"), str(tmp_path), "--low-shot", "1"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--low-shot needs N >= 2 per class" in r.stderr, r.stderr
    (tmp_path / "params.json").write_text(json.dumps({"params": {"dataset": "mnist5k", "seed": 0}}))
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    r = subprocess.run([sys.executable, str(ROOT / "ci" / "probe_noise.py"), str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and f"cannot refit the probes of {tmp_path}" in r.stderr, r.stderr[-2000:]
