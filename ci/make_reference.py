"""(Re)build the reproduction gate's references: data/reference/<experiment>/<tier>.json.

    python ci/make_reference.py --tier smoke [--seeds 0,1,2] [--work DIR] [--only 11_probe,12_jepa_score_ood]

For every seed it runs the tier through the `jepa-nb` runner exactly as ci/reproduce.py does
(10_pretrain_ijepa, then the checkpoint experiments on that seed's checkpoint, then 13_ablate_masking with
`seeds=[seed]`), and writes one reference per experiment: value = mean over the seeds, tolerance =
max(3 std over the seeds, 0.005), plus the expected loss curve for 10. Metrics that cannot fail are left
out of the gate (still reported): an AUROC whose 3-std interval covers all of [0, 1]. Timing metrics
(`*_per_s`, `*_minutes`) are never gated. The environment of the first run is stored with each reference.
"""
import argparse, json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "ci"))
from reproduce import CHECKPOINT_EXPERIMENTS, CLI, EXPERIMENTS, TIERS  # noqa: E402
from jepa_nb.runner import write_reference  # noqa: E402

TIMING = ("_per_s", "_minutes", "_seconds")


def run(nb, tier, rd, *params):
    args = CLI + ["run", ROOT / "nbs" / f"{nb}.ipynb", "--tier", tier, "--run-dir", rd, "--overwrite"]
    for p in params: args += ["-p", p]
    print("+", nb, " ".join(params), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def gated(name: str, entry: dict) -> bool:
    "Gate every numeric metric but timings and AUROCs whose 3-std interval covers all of [0, 1] (they cannot fail)."
    vacuous = name.startswith("auroc") and entry["value"] - entry["tol"] <= 0 and entry["value"] + entry["tol"] >= 1
    return not name.endswith(TIMING) and not vacuous


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tier", default="smoke", choices=TIERS)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--work", type=Path, default=None, help="folder for the reference runs (default runs/reference-<tier>)")
    ap.add_argument("--only", default="", help="comma-separated experiments to rewrite (default: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "reference")
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    if len(seeds) < 2: ap.error("need >= 2 seeds to measure the spread")
    work = (a.work or ROOT / "runs" / f"reference-{a.tier}").resolve()
    only = [e for e in a.only.split(",") if e] or EXPERIMENTS
    for s in seeds:
        pre = work / f"10_pretrain_ijepa_s{s}"
        if any(e != "13_ablate_masking" for e in only): run("10_pretrain_ijepa", a.tier, pre, f"seed={s}")
        for e in CHECKPOINT_EXPERIMENTS:
            if e in only: run(e, a.tier, work / f"{e}_s{s}", f"seed={s}", f"checkpoint={pre / 'checkpoint.pt'}")
        if "13_ablate_masking" in only: run("13_ablate_masking", a.tier, work / f"13_ablate_masking_s{s}", f"seeds=[{s}]")
    for e in only:
        note = (f"value = mean over seeds {seeds} (checkpoint experiments use that seed's 10_pretrain_ijepa checkpoint); "
                "tol = max(3 std, 0.005); timings and AUROCs whose 3-std interval covers [0, 1] are not gated")
        p = write_reference([work / f"{e}_s{s}" for s in seeds], reference_root=a.out, curve="loss" if e == "10_pretrain_ijepa" else None,
                            k=3.0, min_tol=0.005, vary=("seed", "seeds", "checkpoint"), keep=gated, note=note)
        print(f"wrote {p}: {len(json.loads(p.read_text())['metrics'])} metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
