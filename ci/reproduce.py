"""Reproduce the course's experiments for one parameter tier, then report and check them.

    python ci/reproduce.py --tier smoke|cpu|gpu [--out DIR] [--no-check] [--with-ablation] [--with-search] [--with-comparison]
                           [--jobs N] [-p KEY=VALUE ...]

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
`--jobs N` runs the pretraining runs N at a time, then the checkpoint experiments N at a time (default: 2 on the cpu
tier, where every run has one thread and CI has two cores; 1 on the smoke tier, which the test suite runs beside other
tests, and on the gpu tier, whose runs share one device). Each run keeps its own thread and seed, so the numbers are the
same either way; with N > 1 a run's output is printed whole when it ends.
Exit status: non-zero when a run fails or a metric leaves its tolerance.
"""
import argparse, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
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


def sh_all(cmds: list[list], jobs: int = 1, keep_going: bool = False) -> int:
    ("Run `cmds`, `jobs` at a time (one: in order, streaming, and stopping at the first failure unless `keep_going`); "
     "the first non-zero exit status.")
    if jobs <= 1 or len(cmds) <= 1:
        first = 0
        for c in cmds:
            rc = sh(c)
            first = first or rc
            if rc and not keep_going: break
        return first

    def one(c):
        t0 = time.time()
        r = subprocess.run([str(a) for a in c], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return c, r, time.time() - t0

    for c in cmds: print("+ (started)", " ".join(str(a) for a in c), flush=True)
    rcs = []
    with ThreadPoolExecutor(jobs) as pool:
        for c, r, seconds in pool.map(one, cmds):        # in the given order, each as soon as it and those before end
            print("+", " ".join(str(a) for a in c), flush=True)
            print(r.stdout, end="", flush=True)
            print(f"  ({seconds:.0f} s, exit {r.returncode})", flush=True)
            rcs.append(r.returncode)
    return next((rc for rc in rcs if rc), 0)


def default_jobs(tier: str) -> int:
    "Runs at a time: 2 on the cpu tier (one thread each; CI's two cores), else 1."
    return min(2, os.cpu_count() or 1) if tier == "cpu" else 1


def declared(stem: str, params: list[str]) -> list[str]:
    "The `-p` values among `params` that experiment `stem` declares, as runner arguments."
    names = notebook_params(ROOT / "nbs" / f"{stem}.ipynb")
    return [a for p in params if p.partition("=")[0] in names for a in ("-p", p)]


def pin_threads(tier: str) -> None:
    "One thread on the smoke and cpu tiers unless OMP_NUM_THREADS says otherwise: the references' float sums, the same numbers."
    if tier != "gpu": os.environ.setdefault("OMP_NUM_THREADS", "1")


def run_pretraining(tier: str, out: Path, *params: str, jobs: int = 1) -> int:
    "The pretraining runs of `tier` into `out`, `jobs` at a time; non-zero when one fails."
    cmds = []
    for name, extra in pretrain_runs(tier).items():
        args = CLI + ["run", ROOT / "nbs" / "10_pretrain.ipynb", "--tier", tier, "--run-dir", out / name, "--overwrite"]
        for p in extra: args += ["-p", p]
        cmds.append(args + declared("10_pretrain", list(params)))
    return sh_all(cmds, jobs)


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
    ap.add_argument("--jobs", type=int, default=None, help="runs at a time (default: 2 on the cpu tier, else 1)")
    a = ap.parse_args(argv)
    jobs = default_jobs(a.tier) if a.jobs is None else a.jobs
    if jobs < 1: ap.error(f"--jobs must be >= 1, got {jobs}")
    targets = ["10_pretrain", *OPTIONAL]
    stray = [p for p in a.param if not any(declared(t, [p]) for t in targets)]
    if stray: ap.error(f"no experiment run here declares {stray} (pretraining and 13-15: `jepa-nb params <experiment>` lists them)")
    pin_threads(a.tier)
    out = (a.out or ROOT / "runs" / f"reproduce-{a.tier}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    rc = run_pretraining(a.tier, out, *a.param, jobs=jobs)
    if rc: return rc
    runs = [out / name for name in pretrain_runs(a.tier)]
    runs += [out / stem for stem in CHECKPOINT_EXPERIMENTS]
    failed = sh_all([CLI + ["run", ROOT / "nbs" / f"{stem}.ipynb", "--tier", a.tier, "--run-dir", out / stem, "--overwrite",
                            *checkpoint_params(out)] for stem in CHECKPOINT_EXPERIMENTS], jobs, keep_going=True)
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
