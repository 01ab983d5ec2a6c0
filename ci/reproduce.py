"""Reproduce the course's experiments for one parameter tier, then report and check them.

    python ci/reproduce.py --tier smoke|cpu|gpu [--out DIR] [--no-check] [--with-ablation] [--with-search] [--with-comparison]
                           [-p KEY=VALUE ...]

Runs, through the `jepa-nb` runner (papermill):
  10_pretrain         (method=ijepa)  -> checkpoint.pt, curves with yardsticks, probes next to the untrained twin
  10_pretrain_lejepa  (method=lejepa) -> the same notebook, data and budget with LeJEPA
  10_pretrain_vicreg  (method=vicreg, smoke tier only) -> the same with VICReg
  (CHECKPOINT_EXPERIMENTS: notebooks that take the I-JEPA checkpoint as the explicit parameter `checkpoint`
   and the LeJEPA one in `compare_checkpoints`)
  13_ablate_masking  (with --with-ablation, or always for the smoke tier)
  14_recipe_search   (with --with-search, or always for the smoke tier)
  15_compare         (with --with-comparison, or always for the smoke tier)
then `jepa-nb report` over the runs and `jepa-nb check` against data/reference/<run>/<tier>.json.
`-p KEY=VALUE` overrides a parameter of the pretraining runs and of 13-15, in each that declares it (e.g. `-p dataset=mnist5k`
on a GPU machine without a network, `-p nproc=8`); 11 and 12 take their data and models from the checkpoints.
Exit status: non-zero when a run fails or a metric leaves its tolerance.
"""
import argparse, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from jepa_nb.runner import TIERS, notebook_params, reference_for  # noqa: E402  (the runner does not import torch)

CLI = [sys.executable, "-m", "jepa_nb.runner"]
# pretraining runs: run folder -> extra parameters of nbs/10_pretrain.ipynb (one per method)
PRETRAIN_RUNS: dict[str, list[str]] = {"10_pretrain": [], "10_pretrain_lejepa": ["method=lejepa"]}
# every other method's pretraining through experiment 10, on the CI gate (smoke tier) only: 15_compare trains them on every tier
SMOKE_PRETRAIN_RUNS: dict[str, list[str]] = {"10_pretrain_vicreg": ["method=vicreg"]}
# experiments that evaluate the pretrained checkpoints, passed as the explicit parameters `checkpoint` / `compare_checkpoints`
CHECKPOINT_EXPERIMENTS: list[str] = ["11_probe", "12_jepa_score_ood"]
OPTIONAL = {"13_ablate_masking": "ablation", "14_recipe_search": "search", "15_compare": "comparison"}   # stem -> --with-<flag>; always on the smoke tier
EXPERIMENTS = [*PRETRAIN_RUNS, *SMOKE_PRETRAIN_RUNS, *CHECKPOINT_EXPERIMENTS, *OPTIONAL]   # run folders, in run order


def pretrain_runs(tier: str) -> dict[str, list[str]]:
    "The pretraining runs of `tier`: I-JEPA and LeJEPA, and on the smoke tier every other method too."
    return {**PRETRAIN_RUNS, **(SMOKE_PRETRAIN_RUNS if tier == "smoke" else {})}


def experiments(tier: str) -> list[str]:
    "The run folders of `tier`, in run order."
    return [e for e in EXPERIMENTS if e not in SMOKE_PRETRAIN_RUNS or tier == "smoke"]


def sh(args, **kw):
    print("+", " ".join(str(a) for a in args), flush=True)
    t0 = time.time()
    r = subprocess.run([str(a) for a in args], cwd=ROOT, **kw)
    print(f"  ({time.time() - t0:.0f} s, exit {r.returncode})", flush=True)
    return r.returncode


def declared(stem: str, params: list[str]) -> list[str]:
    "The `-p` values among `params` that experiment `stem` declares, as runner arguments."
    names = notebook_params(ROOT / "nbs" / f"{stem}.ipynb")
    return [a for p in params if p.partition("=")[0] in names for a in ("-p", p)]


def pin_threads(tier: str) -> None:
    "One thread on the smoke and cpu tiers unless OMP_NUM_THREADS says otherwise: the references' float sums, the same numbers."
    if tier != "gpu": os.environ.setdefault("OMP_NUM_THREADS", "1")


def run_pretraining(tier: str, out: Path, *params: str) -> int:
    "The pretraining runs of `tier` into `out`; stop at the first failure."
    for name, extra in pretrain_runs(tier).items():
        args = CLI + ["run", ROOT / "nbs" / "10_pretrain.ipynb", "--tier", tier, "--run-dir", out / name, "--overwrite"]
        for p in extra: args += ["-p", p]
        args += declared("10_pretrain", list(params))
        rc = sh(args)
        if rc: return rc
    return 0


def checkpoint_params(out: Path) -> list[str]:
    "The parameters that hand the pretraining runs in `out` to a checkpoint experiment."
    first, *rest = [out / name / "checkpoint.pt" for name in PRETRAIN_RUNS]
    return ["-p", f"checkpoint={first}", "-p", "compare_checkpoints=[" + ", ".join(f'"{p}"' for p in rest) + "]"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tier", default="cpu", choices=TIERS)
    ap.add_argument("--out", type=Path, default=None, help="folder for the runs (default runs/reproduce-<tier>)")
    ap.add_argument("--no-check", action="store_true", help="skip the comparison with data/reference")
    for stem, flag in OPTIONAL.items():
        ap.add_argument(f"--with-{flag}", action="store_true", help=f"also run {stem} (always on for smoke)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                    help="a parameter of the pretraining runs and 13-15, where declared (repeatable)")
    a = ap.parse_args(argv)
    targets = ["10_pretrain", *OPTIONAL]
    stray = [p for p in a.param if not any(declared(t, [p]) for t in targets)]
    if stray: ap.error(f"no experiment run here declares {stray} (pretraining and 13-15: `jepa-nb params <experiment>` lists them)")
    pin_threads(a.tier)
    out = (a.out or ROOT / "runs" / f"reproduce-{a.tier}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    rc = run_pretraining(a.tier, out, *a.param)
    if rc: return rc
    runs, failed = [out / name for name in pretrain_runs(a.tier)], 0
    for stem in CHECKPOINT_EXPERIMENTS:
        runs.append(out / stem)
        failed |= sh(CLI + ["run", ROOT / "nbs" / f"{stem}.ipynb", "--tier", a.tier, "--run-dir", runs[-1], "--overwrite", *checkpoint_params(out)])
    for stem, flag in OPTIONAL.items():
        if getattr(a, f"with_{flag}") or a.tier == "smoke":
            runs.append(out / stem)
            failed |= sh(CLI + ["run", ROOT / "nbs" / f"{stem}.ipynb", "--tier", a.tier, "--run-dir", runs[-1], "--overwrite",
                                *declared(stem, a.param)])
    failed |= sh(CLI + ["report", *runs, "--out", out / "report"])
    if not a.no_check:
        refs = ROOT / "data" / "reference"
        checked = [r for r in runs if reference_for(refs, r, r.name, a.tier).exists()]
        for r in runs:
            if r not in checked: print(f"no reference data/reference/{r.name}/{a.tier}.json: {r.name} not checked")
        if a.tier == "smoke" and len(checked) < len(runs): failed = 1   # the CI gate needs every reference
        if checked: failed |= sh(CLI + ["check", *checked, "--reference", refs, "--tier", a.tier])
    print(f"reproduce --tier {a.tier}: {'FAILED' if failed else 'ok'} in {time.time() - t0:.0f} s; runs in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
