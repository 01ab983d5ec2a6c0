"""torchrun on CPU (gloo), for real: 2 processes with a global batch B against 1 process with batch B (every method),
a killed 2-process run resumed to the uninterrupted result, a failing process that stops the others, and experiment 10
with nproc=2 against nproc=1.

Tolerances (fp32, CPU; the two differ only by the order of float additions, lesson 06a):
- the loss of every step: 1e-5 relative;
- the weights: 1e-5 absolute for I-JEPA and MAE; where a BatchNorm follows (LeJEPA's and SIGReg's projector) a few
  weights have a gradient that is zero in exact arithmetic and only rounding noise, which AdamW turns into steps of
  +-lr: those are bounded by 2 * steps * peak lr;
- experiment 10's results: losses 1e-4 relative, probe accuracies 0.01 absolute, effective rank 1e-3 relative.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from jepa_nb.rundir import new_run
from jepa_nb.data import load_data
from jepa_nb.distributed import launch, result_from_checkpoint, torchrun_command
from jepa_nb.methods import PretrainConfig
from jepa_nb.train import pretrain

ROOT = Path(__file__).resolve().parents[1]
ENV = {"OMP_NUM_THREADS": "1"}
BASE = PretrainConfig(n_train=384, batch_size=64, epochs=1, embed_dim=32, depth=2, num_heads=4, pred_emb_dim=16, pred_depth=1,
                   proj_hidden=32, proj_dim=8, log_every=2, device="cpu")


@pytest.fixture(scope="module")
def data():
    return load_data("mnist5k", "train"), load_data("mnist5k", "test")


def _one(cfg, data, path):
    return pretrain(cfg, data[0], checkpoint_path=path, progress=False, monitor_data=data[1])


def _compare(one, two, cfg, batchnorm: bool):
    assert two.steps == one.steps and len(two.history) == len(one.history) == one.steps
    rel = max(abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(one.history, two.history))
    assert rel < 1e-5, f"{cfg.method}: step losses differ by {rel:.2e} (relative)"
    sd1, sd2 = one.model.state_dict(), two.model.state_dict()
    worst = max((sd1[k].float() - sd2[k].float()).abs().max().item() for k in sd1)
    bound = 2 * one.steps * cfg.lr if batchnorm else 1e-5
    assert worst < bound, f"{cfg.method}: weights differ by {worst:.2e} (bound {bound:.1e})"


@pytest.mark.parametrize("extra,batchnorm", [(dict(method="mae"), False), (dict(method="lejepa", sigreg_weight=0.05), True),
                                              (dict(sigreg_weight=0.05), True), (dict(method="vicreg"), True),
                                              (dict(sigreg_weight=0.05, pred_weight=0.0), True)],
                         ids=["mae", "lejepa", "ijepa+sigreg", "vicreg", "sigreg-alone"])   # plain I-JEPA: the weights to 1e-5 in lesson 06a
def test_two_processes_equal_one(extra, batchnorm, data, tmp_path, capsys):
    cfg = BASE.replace(**extra)
    one = _one(cfg, data, tmp_path / "one.pt")
    two = launch(2, new_run("ddp", cfg, path=tmp_path / "two", seed=0).path, env=ENV)
    assert "2 processes (DistributedDataParallel)" in capsys.readouterr().out   # PyTorch's DDP trains, not a hand-rolled hook
    _compare(one, two, cfg, batchnorm)


def test_killed_two_process_run_resumes_to_the_uninterrupted_result(data, tmp_path):
    cfg = BASE.replace(n_train=768, ckpt_every=3, embed_dim=48)          # 12 steps, checkpoints at 3, 6, 9
    full = _one(cfg, data, tmp_path / "full.pt")
    rd = new_run("ddp", cfg, path=tmp_path / "killed", seed=0).path
    proc = subprocess.Popen(torchrun_command(2, ["--run-dir", str(rd), "--config", str(rd / "config.json")]), cwd=ROOT,
                            env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while True:
        try: step = json.loads((rd / "checkpoint.json").read_text())["step"]
        except (OSError, ValueError): step = None
        if step is not None: break
        if proc.poll() is not None: pytest.fail(f"torchrun ended (exit {proc.returncode}) before its first checkpoint")
        if time.time() - t0 > 240: os.killpg(proc.pid, signal.SIGKILL); pytest.fail("no checkpoint within 240 s")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()                    # torchrun and both processes, at once
    killed_at = json.loads((rd / "checkpoint.json").read_text())["step"]
    assert killed_at < 12, "the run finished before it could be killed; the test proves nothing"
    resumed = launch(2, rd, resume=rd / "checkpoint.pt", env=ENV)
    _compare(full, resumed, cfg, batchnorm=True)                          # SIGReg on: the projector has BatchNorm
    assert [h["step"] for h in resumed.history] == list(range(12))


def test_a_failing_process_stops_the_others(data, tmp_path):
    rd = new_run("ddp", BASE, path=tmp_path / "fail", seed=0).path
    t0 = time.time()
    with pytest.raises(RuntimeError) as e:
        launch(2, rd, env={**ENV, "JEPA_NB_FAULT": "rank=1,step=2"}, timeout_s=120)
    took = time.time() - t0
    assert "injected fault" in str(e.value) and "rank 1" in str(e.value), str(e.value)[-2000:]
    assert took < 90, f"the other process was not stopped promptly ({took:.0f} s)"
    assert not (rd / "checkpoint.pt").exists() or json.loads((rd / "checkpoint.json").read_text())["step"] < 6


def test_experiment_10_with_two_processes_gives_the_one_process_results(tmp_path):
    runs = {}
    for n in (1, 2):
        rd = tmp_path / f"nproc{n}"
        r = subprocess.run([sys.executable, "-m", "jepa_nb.runner", "run", str(ROOT / "nbs" / "10_pretrain.ipynb"), "--tier", "smoke",
                            "--run-dir", str(rd), "-p", f"nproc={n}", "-p", "device=cpu", "-p", "epochs=1", "-p", "n_probe=500"],
                           cwd=ROOT, capture_output=True, text=True,
                           timeout=600, env={**os.environ, **ENV})
        assert r.returncode == 0, (n, r.stdout[-3000:], r.stderr[-3000:])
        runs[n] = json.loads((rd / "results.json").read_text())
    one, two = runs[1], runs[2]
    for k in ("final_loss", "final_pred_loss", "final_pos_only_loss"):
        assert abs(one[k] - two[k]) <= 1e-4 * abs(one[k]), (k, one[k], two[k])
    for k in ("linear_acc", "knn_acc", "linear_acc_random_init", "knn_acc_random_init"):
        assert abs(one[k] - two[k]) <= 0.01, (k, one[k], two[k])
    assert abs(one["effective_rank"] - two["effective_rank"]) <= 1e-3 * one["effective_rank"]
    assert one["steps"] == two["steps"]
    m2 = (tmp_path / "nproc2" / "metrics.csv").read_text().splitlines()
    assert len(m2) == len((tmp_path / "nproc1" / "metrics.csv").read_text().splitlines())   # rank 0 logged every row, once


def test_the_entry_point_takes_the_runners_resolved_parameters(tmp_path):
    "Lesson 06a reads no experiment: `jepa-nb params ... --json` resolves and checks them, `--config` takes the file."
    import argparse
    from jepa_nb.distributed import _config_from
    r = subprocess.run([sys.executable, "-m", "jepa_nb.runner", "params", "10_pretrain", "--tier", "smoke", "-p", "epochs=3",
                        "-p", "method=vicreg", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    (tmp_path / "params.json").write_text(r.stdout)
    cfg = _config_from(argparse.Namespace(config=str(tmp_path / "params.json")))
    assert (cfg.epochs, cfg.method, cfg.embed_dim, cfg.n_train) == (3, "vicreg", 32, 512)     # -p, then the smoke tier
    bad = subprocess.run([sys.executable, "-m", "jepa_nb.runner", "params", "10_pretrain", "--tier", "smoke", "-p", "epoch=3",
                          "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "epoch" in bad.stderr


GATHER_SCRIPT = """
import torch, torch.distributed as dist
from jepa_nb.collectives import gather_rows
dist.init_process_group("gloo"); rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(rank)
x = torch.randn(4, 3, 5, requires_grad=True)                      # this process's rows (dim 1)
w = torch.randn(4, 3 * world, 5, generator=torch.Generator().manual_seed(0))
loss = lambda full: (full * w).pow(2).sum() + full.std(1).sum()   # a statistic of the whole gathered batch
loss(gather_rows(x, dim=1)).backward()
# reference: each process's gradient of its own loss on the whole batch, summed over processes, this process's slice
parts = [torch.empty_like(x) for _ in range(world)]; dist.all_gather(parts, x.detach())
full = torch.cat(parts, 1).requires_grad_(); loss(full).backward()
ref = full.grad.clone(); dist.all_reduce(ref)
ok = torch.allclose(x.grad, ref.narrow(1, rank * 3, 3), rtol=1e-6, atol=1e-6)
print(f"rank {rank} gather_rows gradient {'matches' if ok else 'DIFFERS from'} the summed slice", flush=True)
dist.destroy_process_group()
import os, sys; sys.stderr.flush(); os._exit(0)        # as jepa_nb.distributed ends (lesson 06a: Python's shutdown can abort gloo)
"""


def test_gather_rows_gradient_is_the_summed_slice(tmp_path):
    "gather_rows (torch.distributed.nn.functional.all_gather) under torchrun: its gradient is lesson 00's by-hand backward."
    script = tmp_path / "gather.py"; script.write_text(GATHER_SCRIPT)
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script)],
                       capture_output=True, text=True, env={**os.environ, **ENV}, timeout=120)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert p.stdout.count("matches the summed slice") == 2, p.stdout


def test_the_readmes_torchrun_lines_use_the_entry_points_own_options():
    "Every `-m jepa_nb.distributed ...` line of the README parses with the entry point's parser (no stale flags)."
    import re, shlex
    from jepa_nb.distributed import _parser
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    calls = [l.split("-m jepa_nb.distributed", 1)[1] for l in text.splitlines() if "-m jepa_nb.distributed " in l]
    assert calls, "the README shows no torchrun line"
    for args in calls:
        _parser().parse_args(shlex.split(re.sub(r"\s+#.*$", "", args)))      # exits (SystemExit) on an unknown option
