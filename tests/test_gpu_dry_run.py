"""ci/gpu_dry_run.py: the gpu tier checked on this CPU before a lent GPU (no network, minutes) runs it (issue 18)."""
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "ci"))
import gpu_dry_run  # noqa: E402


def dry(capsys, *args: str) -> tuple[int, str]:
    "Run the dry run in this process (torch and papermill imported once); its exit status and its output."
    capsys.readouterr()
    rc = gpu_dry_run.main(list(args))
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def problems(out: str) -> list[str]:
    "The problem lines under the verdict."
    return [l[4:] for l in re.split(r"\ngpu (?:dry run|preflight): ", out)[-1].splitlines()[1:] if l.startswith("  - ")]


def test_todays_gpu_tiers_fail_only_on_cifar10_which_a_machine_without_network_cannot_load(capsys):
    rc, out = dry(capsys, "--preflight", "--network", "off")
    assert rc == 1, out
    (p,) = problems(out)                              # one problem, every run that reads the data named in it
    assert p.startswith("data of 10_pretrain, 10_pretrain_lejepa, 11_probe, 12_jepa_score_ood, 13_ablate_masking, "
                        "15_compare: cifar10 needs the Hugging Face hub"), p
    assert "the lent GPU machine has no network" in p and "-p dataset=shapes" in p and "pre-fill the Hugging Face" in p
    assert "| 14_recipe_search | mnist5k yes |" in out


def test_with_the_remedy_every_method_builds_at_gpu_shapes_steps_on_cpu_and_wraps_in_ddp(capsys):
    rc, out = dry(capsys, "--quick", "-p", "dataset=shapes")
    assert rc == 0, out
    assert "gpu dry run: ok (0 problems)" in out
    rows = [l.split(" | ") for l in out.splitlines() if l.startswith("| 1") and l.rstrip().endswith("| ok |")]
    assert {r[1].split()[0] for r in rows} >= {"ijepa", "lejepa", "mae", "vicreg"}, out   # one of each method
    ijepa = next(r for r in rows if r[1].startswith("ijepa"))                    # the smallest: 14's ViT 64x3
    assert "14_recipe_search" in ijepa[0] and 0.3 < float(ijepa[2]) < 0.7       # M params: encoder, EMA target, predictor (8-px patches)
    assert 1 < float(ijepa[3]) < 139 and float(ijepa[4]) > 1                     # GiB at batch 128, GFLOP per step
    assert re.search(r"DDP wrapping: ok: \w+ \d+x\d+, 2 gloo processes, 2 steps", out), out


def test_an_impossible_parameter_and_a_model_too_big_for_the_h200_fail_by_name(tmp_path, capsys):
    params = tmp_path / "params"
    shutil.copytree(ROOT / "nbs" / "params", params)
    (params / "11_probe" / "gpu.json").write_text(json.dumps({"device": "cuda", "low_shot": "many"}))
    big = dict(device="cuda", recipes=["ijepa"], seeds=[0], embed_dim=8192, depth=48, num_heads=32, pred_emb_dim=256,
               pred_depth=1, patch_size=4)   # predictor and patches pinned: the count below does not move with 14's default
    (params / "14_recipe_search" / "gpu.json").write_text(json.dumps(big))
    rc, out = dry(capsys, "--only", "11_probe,14_recipe_search", "--no-ddp", "--params-dir", str(params))
    assert rc == 1, out
    found = problems(out)
    assert len(found) == 2, out
    assert found[0].startswith("11_probe: gpu tier: ParamError") and "'low_shot' expects list" in found[0]
    assert re.match(r"14_recipe_search / ijepa: its weights and AdamW state alone need ~\d+ GiB "
                    r"\(77327 M parameters\), more than the H200's 139 GiB; use a smaller model", found[1]), found[1]
