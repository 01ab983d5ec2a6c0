"""(Re)build the reproduction gate's references: data/reference/<run>/<tier>.json.

    python ci/make_reference.py --tier smoke [--seeds 0,1,2] [--work DIR] [--only 11_probe,12_jepa_score_ood] [--[no-]progress]
    python ci/make_reference.py --tier cpu --seeds 0,1,2,3,4,5,6,7,8,9 --only 10_pretrain_sigreg_alone   # the gate's ablation

A seed's pretraining runs go two at a time on the cpu tier (ci/reproduce.py's --jobs default).

For every seed it runs the tier through the `jepa-nb` runner exactly as ci/reproduce.py does (both pretraining
runs of 10_pretrain, then the checkpoint experiments on that seed's checkpoints, then 13_ablate_masking and
14_recipe_search and 15_compare with `seeds=[seed]`), into <work>/s<seed>/<run>, and writes one reference per run: value = mean
over the seeds, tolerance = max(3 std over the seeds, 0.005), plus the expected loss curve of the pretraining runs.
Metrics that cannot fail are left out of the gate (still reported): an AUROC whose 3-std interval covers all of
[0, 1]. Timing metrics (a `seconds`, `minutes` or `per_s` part in the name) are never gated. The environment of the first run is
stored with each reference. A progress bar counts the runs (seeds x runs) by jepa_nb.eval's rule: on a terminal, not
under CI, unless --progress / --no-progress says otherwise.
"""
import argparse, json, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "ci"))
from reproduce import (CHECKPOINT_EXPERIMENTS, CLI, OPTIONAL, TIERS, checkpoint_params, default_jobs, experiments,  # noqa: E402
                       pin_threads, pretrain_runs, run_pretraining)
from jepa_nb.runner import reference_path, write_reference  # noqa: E402



# the gate's ablation runs: experiment 10 with one term switched off, kept only as references for tests/test_references.py
# (built here with --only, on the gate's seeds; never run by ci/reproduce.py, `make main` or `make test`):
# run folder -> extra parameters of nbs/10_pretrain.ipynb
ABLATION_RUNS: dict[str, list[str]] = {"10_pretrain_sigreg_alone": ["pred_weight=0"]}


def run(nb, tier, rd, *args):
    cmd = CLI + ["run", ROOT / "nbs" / f"{nb}.ipynb", "--tier", tier, "--run-dir", rd, "--overwrite", *args]
    print("+", nb, " ".join(map(str, args)), flush=True)
    subprocess.run([str(a) for a in cmd], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def _complete(rd: Path) -> bool:
    return (rd / "status.json").is_file() and json.loads((rd / "status.json").read_text()).get("status") == "complete"


def gated(name: str, entry: dict) -> bool:
    "Gate every numeric metric but timings and AUROCs whose 3-std interval covers all of [0, 1] (they cannot fail)."
    vacuous = name.startswith("auroc") and entry["value"] - entry["tol"] <= 0 and entry["value"] + entry["tol"] >= 1
    timing = bool(re.search(r"(^|_)(seconds|minutes)(_|$)|(^|_)per_s(_|$)", name))     # train_seconds_mae, img_per_s, minutes
    return not timing and not vacuous


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tier", default="smoke", choices=TIERS)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--work", type=Path, default=None, help="folder for the reference runs (default runs/reference-<tier>)")
    ap.add_argument("--only", default="", help="comma-separated runs to rewrite (default: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "reference")
    ap.add_argument("--reuse", action="store_true", help="keep runs already complete (a seed's pretraining runs when both are), e.g. ones run side by side by hand")
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="a progress bar over the runs (default: automatic, on a terminal and not under CI)")
    a = ap.parse_args(argv)
    pin_threads(a.tier)                                     # one thread, as ci/reproduce.py checks them
    seeds = [int(s) for s in a.seeds.split(",")]
    if len(seeds) < 2: ap.error("need >= 2 seeds to measure the spread")
    work = (a.work or ROOT / "runs" / f"reference-{a.tier}").resolve()
    only = [e for e in a.only.split(",") if e] or experiments(a.tier)
    known = experiments(a.tier) + list(ABLATION_RUNS)
    unknown = [e for e in only if e not in known]
    if unknown: ap.error(f"unknown runs {unknown} for tier {a.tier!r}; choose from {known}")
    from jepa_nb.eval import progress_bar      # imports torch: after the argument checks
    steps = []                                 # (seed, run) in run order: a seed's pretraining, then its experiments
    for s in seeds:
        if any(e not in OPTIONAL and e not in ABLATION_RUNS for e in only): steps.append((s, None))
        steps += [(s, e) for e in CHECKPOINT_EXPERIMENTS + list(OPTIONAL) + list(ABLATION_RUNS) if e in only]
    for s, e in progress_bar(steps, a.progress, desc="reference runs", unit="run"):
        out = work / f"s{s}"
        if e is None:
            done = all(_complete(out / name) for name in pretrain_runs(a.tier))
            if a.reuse and done: print(f"reusing the complete pretraining runs in {out}")
            elif run_pretraining(a.tier, out, f"seed={s}", jobs=default_jobs(a.tier)): return 1
        elif a.reuse and _complete(out / e): print(f"reusing the complete run {out / e}")
        elif e in CHECKPOINT_EXPERIMENTS: run(e, a.tier, out / e, "-p", f"seed={s}", *checkpoint_params(out))
        elif e in ABLATION_RUNS:
            run("10_pretrain", a.tier, out / e, "-p", f"seed={s}", *[x for p in ABLATION_RUNS[e] for x in ("-p", p)])
        else: run(e, a.tier, out / e, "-p", f"seeds=[{s}]")
    for e in only:
        note = (f"value = mean over seeds {seeds} (checkpoint experiments use that seed's pretraining checkpoints); "
                "tol = max(3 std, 0.005); timings and AUROCs whose 3-std interval covers [0, 1] are not gated")
        trains = e in pretrain_runs(a.tier) or e in ABLATION_RUNS       # a pretraining run: its loss curve is kept
        p = write_reference([work / f"s{s}" / e for s in seeds], reference_path(a.out, e, a.tier), curve="loss" if trains else None,
                            k=3.0, min_tol=0.005, vary=("seed", "seeds", "checkpoint", "compare_checkpoints"), keep=gated, note=note)
        print(f"wrote {p}: {len(json.loads(p.read_text())['metrics'])} metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
