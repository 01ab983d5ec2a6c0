"""Reproduce the course's experiments for one parameter tier, then report and check them.

    python ci/reproduce.py --tier smoke|cpu|gpu [--out DIR] [--no-check] [--with-ablation]

Runs, through the `jepa-nb` runner (papermill):
  10_pretrain_ijepa  -> checkpoint.pt, curves, linear probe next to random init and raw pixels
  (CHECKPOINT_EXPERIMENTS: notebooks that take that checkpoint as an explicit parameter)
  13_ablate_masking  (with --with-ablation, or always for the smoke tier)
then `jepa-nb report` over the runs and `jepa-nb check` against data/reference/<experiment>/<tier>.json.
Exit status: non-zero when a run fails or a metric leaves its tolerance.
"""
import argparse, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from jepa_nb.runner import TIERS, reference_path  # noqa: E402  (the runner does not import torch)

CLI = [sys.executable, "-m", "jepa_nb.runner"]
# experiments that evaluate the pretrained checkpoint, passed as the explicit parameter `checkpoint`
CHECKPOINT_EXPERIMENTS: list[str] = ["11_probe", "12_jepa_score_ood"]
EXPERIMENTS = ["10_pretrain_ijepa", *CHECKPOINT_EXPERIMENTS, "13_ablate_masking"]   # in run order


def sh(args, **kw):
    print("+", " ".join(str(a) for a in args), flush=True)
    t0 = time.time()
    r = subprocess.run([str(a) for a in args], cwd=ROOT, **kw)
    print(f"  ({time.time() - t0:.0f} s, exit {r.returncode})", flush=True)
    return r.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tier", default="cpu", choices=TIERS)
    ap.add_argument("--out", type=Path, default=None, help="folder for the runs (default runs/reproduce-<tier>)")
    ap.add_argument("--no-check", action="store_true", help="skip the comparison with data/reference")
    ap.add_argument("--with-ablation", action="store_true", help="also run 13_ablate_masking (always on for smoke)")
    a = ap.parse_args(argv)
    out = (a.out or ROOT / "runs" / f"reproduce-{a.tier}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    nbs = ROOT / "nbs"
    pre = out / "10_pretrain_ijepa"
    rc = sh(CLI + ["run", nbs / "10_pretrain_ijepa.ipynb", "--tier", a.tier, "--run-dir", pre, "--overwrite"])
    if rc: return rc
    ckpt = pre / "checkpoint.pt"
    runs = [pre]
    failed = 0
    for stem in CHECKPOINT_EXPERIMENTS:
        runs.append(out / stem)
        failed |= sh(CLI + ["run", nbs / f"{stem}.ipynb", "--tier", a.tier, "--run-dir", runs[-1], "--overwrite", "-p", f"checkpoint={ckpt}"])
    if a.with_ablation or a.tier == "smoke":
        runs.append(out / "13_ablate_masking")
        failed |= sh(CLI + ["run", nbs / "13_ablate_masking.ipynb", "--tier", a.tier, "--run-dir", runs[-1], "--overwrite"])
    failed |= sh(CLI + ["report", *runs, "--out", out / "report"])
    if not a.no_check:
        refs = ROOT / "data" / "reference"
        checked = [r for r in runs if reference_path(refs, r.name, a.tier).exists()]
        for r in runs:
            if r not in checked: print(f"no reference data/reference/{r.name}/{a.tier}.json: {r.name} not checked")
        if a.tier == "smoke" and len(checked) < len(runs): failed = 1   # the CI gate needs every reference
        if checked: failed |= sh(CLI + ["check", *checked, "--reference", refs, "--tier", a.tier])
    print(f"reproduce --tier {a.tier}: {'FAILED' if failed else 'ok'} in {time.time() - t0:.0f} s; runs in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
