"""Fault injection (issues 9 and 17), for real on the smoke tier: a pretraining run killed with SIGKILL and resumed from
the CLI, a file-size limit and a real full disk during a run, a read-only run folder, two runs started into one folder,
and bad datasets given to a real run."""
import contextlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "jepa_nb.runner"]
TIMING = {"train_minutes", "img_per_s", "checkpoint"}          # results that may differ between two runs of one setting


def cli(*args, timeout=600):
    return subprocess.run([*CLI, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def start(*args):
    return subprocess.Popen([*CLI, *map(str, args)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def cli_all(*calls, timeout=600):
    "Run several command lines at once; their CompletedProcesses, in order."
    procs = [subprocess.Popen([*CLI, *map(str, a)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in calls]
    outs = [p.communicate(timeout=timeout) for p in procs]
    return [subprocess.CompletedProcess(p.args, p.returncode, *o) for p, o in zip(procs, outs)]


def mount_tmpfs(d: Path, size: str) -> None:
    "Mount a real tmpfs of `size` on `d`, or skip: a small file system needs root (and CAP_SYS_ADMIN)."
    if os.geteuid() != 0: pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode: pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


@contextlib.contextmanager
def read_only_folder(d: Path, fill):
    "A real read-only folder `d`, filled by `fill(d)` first: a tmpfs remounted read-only as root (who ignores chmod), else chmod a-w."
    d.mkdir(parents=True)
    if os.geteuid() != 0:
        fill(d)
        dirs = [d, *[p for p in d.rglob("*") if p.is_dir()]]
        for p in dirs: p.chmod(0o555)
        try: yield d
        finally:
            for p in dirs: p.chmod(0o755)
        return
    mount_tmpfs(d, "4m")
    try:
        fill(d)
        subprocess.run(["mount", "-o", "remount,ro", str(d)], check=True)
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def wait_for(cond, proc, what, timeout=300):
    t0 = time.time()
    while not cond():
        if proc.poll() is not None: pytest.fail(f"the run ended (exit {proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        if time.time() - t0 > timeout: pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def settle(d: Path, quiet_s: float = 3.0, timeout: float = 30.0) -> None:
    "Wait until the run folder's checkpoint.json has not changed for `quiet_s` seconds (a killed runner's kernel is gone)."
    t0, last, since = time.time(), None, time.time()
    while time.time() - since < quiet_s:
        if time.time() - t0 > timeout: pytest.fail(f"{d}/checkpoint.json still changing {timeout} s after the kill")
        now = (d / "checkpoint.json").stat().st_mtime_ns if (d / "checkpoint.json").exists() else None
        if now != last: last, since = now, time.time()
        time.sleep(0.1)


def checkpoint_step(d: Path):
    try: return json.loads((d / "checkpoint.json").read_text())["step"]
    except (OSError, ValueError, KeyError): return None


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults") / "uninterrupted"
    r = cli("run", "pretrain", "--tier", "smoke", "--run-dir", d, "-q")
    assert r.returncode == 0, r.stderr
    return d


def test_kill_9_then_resume_is_bit_identical(uninterrupted, tmp_path):
    d = tmp_path / "killed"
    target = random.choice([4, 8, 12])                    # a checkpoint step of the smoke tier (ckpt_every 4, 16 steps)
    proc = start("run", "pretrain", "--tier", "smoke", "--run-dir", d, "-q")
    wait_for(lambda: (checkpoint_step(d) or 0) >= target, proc, f"the checkpoint of step {target}")
    os.kill(proc.pid, signal.SIGKILL)                      # the runner, by its own PID
    proc.wait()
    settle(d)                                              # its orphaned kernel may finish one more checkpoint before it exits
    st = json.loads((d / "status.json").read_text())
    assert st["status"] == "running" and st["pid"] == proc.pid   # all a killed run can leave behind...
    rep = cli("report", d, "--out", tmp_path / "report")         # ...which every reader shows as interrupted
    assert rep.returncode == 1 and "interrupted" in rep.stderr and "jepa-nb resume" in rep.stderr, rep.stderr
    chk = cli("check", d, "--reference", ROOT / "data" / "reference")
    assert chk.returncode == 1 and "run interrupted" in chk.stdout, chk.stdout
    killed_at = checkpoint_step(d)
    r = cli("resume", d, "-q")
    assert r.returncode == 0, r.stderr
    st = json.loads((d / "status.json").read_text())
    assert st["status"] == "complete" and st["resumed_from"]["step"] == killed_at and st["resumed_from"]["earlier"]["pid"] == proc.pid
    a, b = (torch.load(x / "checkpoint.pt", weights_only=True) for x in (uninterrupted, d))
    assert a["step"] == b["step"] == 16 and a["model"].keys() == b["model"].keys()
    for k in a["model"]: assert torch.equal(a["model"][k], b["model"][k]), f"parameter {k} differs after kill and resume"
    for k in a["optimizer"]["state"]:
        for n, v in a["optimizer"]["state"][k].items(): assert torch.equal(v, b["optimizer"]["state"][k][n]), (k, n)
    ra, rb = (json.loads((x / "results.json").read_text()) for x in (uninterrupted, d))
    assert {k: v for k, v in ra.items() if k not in TIMING} == {k: v for k, v in rb.items() if k not in TIMING}
    import pandas as pd
    ma, mb = (pd.read_csv(x / "metrics.csv").drop(columns="img_per_s") for x in (uninterrupted, d))
    pd.testing.assert_frame_equal(ma, mb)                 # the log continues where the checkpoint left it
    assert not list(d.glob("*.tmp")) and not (d / ".lock").exists()


def test_resume_refuses_what_it_cannot_continue(uninterrupted, tmp_path):
    r = cli("resume", uninterrupted)
    assert r.returncode == 2 and "complete: nothing to resume" in r.stderr
    r = cli("run", "pretrain", "--tier", "smoke", "--run-dir", tmp_path / "x", "-p", "resume=somewhere.pt")
    assert r.returncode == 2 and "jepa-nb resume RUN_DIR" in r.stderr


def test_two_runs_into_one_folder(tmp_path):
    d = tmp_path / "one"
    first = start("run", "pretrain", "--tier", "smoke", "--run-dir", d, "-q")
    wait_for(lambda: (d / ".lock").exists() and (d / "status.json").exists(), first, "the first run to claim the folder")
    second = cli("run", "pretrain", "--tier", "smoke", "--run-dir", d, "-q")
    assert second.returncode == 2 and "in use by a live run" in second.stderr and str(first.pid) in second.stderr, second.stderr
    overwrite = cli("run", "pretrain", "--tier", "smoke", "--run-dir", d, "-q", "--overwrite")
    assert overwrite.returncode == 2 and "in use by a live run" in overwrite.stderr   # --overwrite never deletes a live run
    assert first.wait(timeout=600) == 0, first.stderr.read()
    assert json.loads((d / "status.json").read_text())["status"] == "complete" and not (d / ".lock").exists()


def test_file_size_limit_while_checkpointing(tmp_path):
    "A file-size limit (RLIMIT_FSIZE) makes the next checkpoint write fail for real; the error names the limit, not the free space."
    code = f"""
import json, resource, signal
from pathlib import Path
from jepa_nb.methods import build_model, PretrainConfig
from jepa_nb.checkpoint import load_checkpoint, save_checkpoint
cfg = PretrainConfig(embed_dim=32, depth=2, num_heads=4, pred_emb_dim=16, pred_depth=1)
model, p = build_model(cfg, 1), Path({str(tmp_path)!r}) / "checkpoint.pt"
save_checkpoint(p, model, None, 1, cfg)
good = p.read_bytes()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)                      # fail with EFBIG instead of being killed
resource.setrlimit(resource.RLIMIT_FSIZE, (len(good) // 2, resource.RLIM_INFINITY))
try:
    save_checkpoint(p, model, None, 2, cfg)
    print(json.dumps(dict(raised=None)))
except OSError as e:
    print(json.dumps(dict(raised=type(e).__name__, msg=str(e), same=p.read_bytes() == good, step=load_checkpoint(p)["step"],
                          tmp=[q.name for q in p.parent.iterdir() if q.name.endswith(".tmp")])))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["raised"] == "WriteError", out
    assert str(tmp_path / "checkpoint.pt") in out["msg"] and "intact" in out["msg"]
    assert "file-size limit of" in out["msg"] and "ulimit -f" in out["msg"] and "MiB free" not in out["msg"]   # the limit, not the disk
    assert out["same"] and out["step"] == 1 and out["tmp"] == []


@pytest.fixture(scope="module")
def bad_data(tmp_path_factory):
    "The bad datasets of issue 9: a folder mixing grey and RGB classes, a pandas-written parquet with string labels, one without labels."
    import io

    import pandas as pd
    from PIL import Image
    from jepa_nb.data import load_data
    root = tmp_path_factory.mktemp("bad_data")
    digits = load_data("mnist5k", "train", n=40)
    for i in range(40):
        im = Image.fromarray(digits.images[i, 0].numpy())
        cls = "grey" if i % 2 else "colour"
        (root / "mixed" / cls).mkdir(parents=True, exist_ok=True)
        (im if cls == "grey" else im.convert("RGB")).save(root / "mixed" / cls / f"{i}.png")
    def png(i):
        buf = io.BytesIO(); Image.fromarray(digits.images[i, 0].numpy()).save(buf, format="PNG"); return buf.getvalue()
    rows = [{"image": {"bytes": png(i), "path": None}, "label": digits.classes[int(digits.labels[i])]} for i in range(40)]
    pd.DataFrame(rows).to_parquet(root / "strings.parquet")
    pd.DataFrame([{"image": r["image"]} for r in rows]).to_parquet(root / "nolabels.parquet")
    return root


def test_bad_datasets_get_clear_errors_or_load(bad_data):
    from jepa_nb.data import load_data
    with pytest.raises(ValueError, match="mixes greyscale and colour images.*mode='L'"):
        load_data(f"folder:{bad_data / 'mixed'}")
    assert load_data(f"folder:{bad_data / 'mixed'}", mode="L").images.shape[1] == 1
    d = load_data(f"parquet:{bad_data / 'strings.parquet'}")                    # pandas image structs, string labels
    assert d.images.shape == (40, 1, 28, 28) and sorted(d.classes) == sorted(set(d.classes)) and len(d.classes) == 10
    with pytest.raises(ValueError, match="labels=None"):
        load_data(f"parquet:{bad_data / 'nolabels.parquet'}")
    assert (load_data(f"parquet:{bad_data / 'nolabels.parquet'}", labels=None).labels == -1).all()


def test_a_real_run_on_a_bad_dataset_fails_naming_it(bad_data, tmp_path):
    # 40 images: a batch of 20 fits (fewer than one batch is refused before a kernel starts, tests/test_bad_input.py)
    r = cli("run", "pretrain", "--tier", "smoke", "--run-dir", tmp_path / "r", "-q", "-p", f"dataset=folder:{bad_data / 'mixed'}",
            "-p", "batch_size=20")
    assert r.returncode == 1 and "mixes greyscale and colour images" in r.stderr, r.stderr[-3000:]
    st = json.loads((tmp_path / "r" / "status.json").read_text())
    assert st["status"] == "failed" and "mode='L'" in st["error"]["evalue"]


def test_file_size_limit_during_a_real_run(tmp_path):
    "Under `ulimit -f` (1 MiB; the smoke checkpoint is 1.5 MiB) a real run fails naming the limit, with the kernel's cell."
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)                  # EFBIG instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, resource.RLIM_INFINITY))
    d = tmp_path / "r"
    r = subprocess.run([*CLI, "run", "pretrain", "--tier", "smoke", "--run-dir", str(d), "-q"], cwd=ROOT, capture_output=True,
                       text=True, timeout=600, preexec_fn=limit)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert (f"WriteError: could not write {d / 'checkpoint.pt'} (it reached this process's file-size limit of 1.00 MiB, ulimit -f)"
            in r.stderr and "Raise the limit (ulimit -f unlimited)" in r.stderr and "MiB free" not in r.stderr), r.stderr[-3000:]
    st = json.loads((d / "status.json").read_text())
    assert st["status"] == "failed" and st["error"]["ename"] == "WriteError" and isinstance(st["error"]["cell"], int), st
    assert f"failed in cell [{st['error']['cell']}]" in r.stderr and not list(d.glob("*.tmp"))


def test_full_disk_during_a_real_run(tmp_path):
    "A real full disk (a 1 MiB tmpfs; the smoke checkpoint needs 1.5 MiB): the user sees the kernel's WriteError and its cell."
    d = tmp_path / "small"; d.mkdir()
    mount_tmpfs(d, "1m")
    try:
        r = cli("run", "pretrain", "--tier", "smoke", "--run-dir", d / "r", "-q")
        assert r.returncode == 1 and "Traceback" not in r.stderr and "Errno 28" not in r.stderr.split("WriteError")[0], r.stderr[-3000:]
        assert f"WriteError: could not write {d / 'r' / 'checkpoint.pt'} (" in r.stderr and "MiB free on its filesystem" in r.stderr
        assert "Free some space or write it elsewhere" in r.stderr
        st = json.loads((d / "r" / "status.json").read_text())
        assert st["status"] == "failed" and st["error"]["ename"] == "WriteError" and isinstance(st["error"]["cell"], int), st
        import nbformat
        nb = nbformat.read(d / "r" / "notebook.ipynb", as_version=4)                   # whole, with the error in it
        assert any(o.get("ename") == "WriteError" for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
        assert not list((d / "r").glob("*.tmp")) and not (d / "r" / ".lock").exists()
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_read_only_run_folder(tmp_path):
    "run and resume into a read-only file system: one line naming the folder and where to go instead; nothing written."
    def interrupted_run(d):
        r = d / "r"; r.mkdir()
        (r / "params.json").write_text(json.dumps(dict(notebook=str(ROOT / "nbs/10_pretrain.ipynb"), experiment="10_pretrain",
                                                       tier="smoke", params={"seed": 0})))
        (r / "status.json").write_text(json.dumps(dict(status="failed", experiment="10_pretrain", tier="smoke")))
        (r / "checkpoint.pt").write_bytes(b"a checkpoint")
    with read_only_folder(tmp_path / "ro", interrupted_run) as ro:
        run, run_dir, resume = cli_all(["run", "pretrain", "--tier", "smoke", "--runs-root", ro, "-q"],
                                       ["run", "pretrain", "--tier", "smoke", "--run-dir", ro / "x", "-q"], ["resume", ro / "r", "-q"])
        why = "(Read-only file system)" if os.geteuid() == 0 else "(Permission denied)"
        for r, where in [(run, ro / "10_pretrain"), (run_dir, ro / "x")]:
            assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("error:") == 1, r.stderr
            assert f"jepa-nb run: error: cannot write in run folder {where}" in r.stderr and why in r.stderr, r.stderr
            assert "choose a writable place with --runs-root DIR (or --run-dir / --sweep-dir DIR)" in r.stderr
        assert resume.returncode == 2 and "Traceback" not in resume.stderr, resume.stderr
        assert f"cannot write in run folder {ro / 'r'} {why}; resume a writable copy instead (cp -r {ro / 'r'} DIR" in resume.stderr
        assert sorted(p.name for p in ro.rglob("*")) == ["checkpoint.pt", "params.json", "r", "status.json"]   # nothing written
