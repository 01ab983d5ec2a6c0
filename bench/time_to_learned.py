#!/usr/bin/env python
"""Time to a learned encoder: wall-clock training seconds until each method's online kNN probe first beats its
untrained twin by 5 points — the speed a learner feels, rather than seconds per step.

    python bench/time_to_learned.py                       # runs experiment 15 (cpu tier, seed 0) through jepa-nb, then reads it
    python bench/time_to_learned.py --seeds 0,1,2         # the same over three seeds (about 18 min per seed on one core)
    python bench/time_to_learned.py --run RUN_DIR [...]   # read finished 15_compare run folders instead

Experiment 15 trains every method on the same encoder, data and budget and logs, every `online_every` steps, a kNN
probe of the evaluated encoder (n_online labelled train images, n_online_test test images) with the images seen and
the training seconds (monitoring excluded): its `online_probe.csv`. The row at step 0 of each method is the untrained
twin (the same init). A method has *learned* at the first monitor point whose online kNN is >= twin + 0.05; the
time is that point's training seconds (a resolution of one monitor interval; an upper bound). A method that never
gets there within the budget prints "not within the budget". The last column is each method's time over LeJEPA's
(issue 18's goal: I-JEPA within 1.5x). Times depend on the machine and on what else runs on it: run it quiet, and
record the table in bench/RESULTS.md with the machine described.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARGIN = 0.05


def learned_at(rows: list[dict], margin: float = MARGIN) -> dict:
    "From one method's monitor rows of one seed (step 0 = the untrained twin): the first point at twin + margin."
    rows = sorted(rows, key=lambda r: int(r["step"]))
    if not rows or int(rows[0]["step"]) != 0: raise ValueError("online_probe.csv has no step-0 row (the untrained twin)")
    twin = float(rows[0]["online_knn"])
    hit = next((r for r in rows[1:] if float(r["online_knn"]) >= twin + margin - 1e-9), None)   # accuracies are k/n: no float slack
    last = rows[-1]
    return dict(twin=twin, final=float(last["online_knn"]), total_seconds=float(last["train_seconds"]),
                seconds=None if hit is None else float(hit["train_seconds"]),
                images=None if hit is None else int(hit["images_seen"]), step=None if hit is None else int(hit["step"]))


def read_run(run_dir: Path) -> dict[tuple[str, int], dict]:
    path = Path(run_dir) / "online_probe.csv"
    if not path.is_file(): raise FileNotFoundError(f"{path} not found: pass a finished 15_compare run folder")
    by = {}
    with path.open() as f:
        for r in csv.DictReader(f): by.setdefault((r["method"], int(r["seed"])), []).append(r)
    return {k: learned_at(v) for k, v in by.items()}


def run_experiment(seeds: list[int], out: Path) -> Path:
    "Experiment 15 on the cpu tier with `seeds`, through the jepa-nb runner (one thread, as the references)."
    run_dir = out / "15_compare"
    cmd = [str(Path(sys.executable).parent / "jepa-nb"), "run", "compare", "--tier", "cpu", "--run-dir", str(run_dir),
           "-q", "-p", f"seeds={seeds}"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    return run_dir


def table(results: dict[tuple[str, int], dict]) -> str:
    ref = {s: r["seconds"] for (m, s), r in results.items() if m == "LeJEPA"}
    lines = ["| method | seed | twin kNN | learned (+5 points) after | images seen | final kNN | training s (all) | × LeJEPA's time |",
             "|---|---|---|---|---|---|---|---|"]
    for (m, s), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        when = "not within the budget" if r["seconds"] is None else f"{r['seconds']:.1f} s (step {r['step']})"
        ratio = "–" if r["seconds"] is None or not ref.get(s) else f"{r['seconds'] / ref[s]:.2f}×"
        lines.append(f"| {m} | {s} | {r['twin']:.3f} | {when} | {r['images'] or '–'} | {r['final']:.3f} | "
                     f"{r['total_seconds']:.1f} | {ratio} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, action="append", default=[], help="a finished 15_compare run folder (repeatable)")
    ap.add_argument("--seeds", default="0", help="seeds when running the experiment (comma-separated)")
    ap.add_argument("--out", type=Path, default=None, help="where to run it (default: a temporary folder)")
    a = ap.parse_args(argv)
    runs = a.run
    if not runs:
        out = a.out or Path(tempfile.mkdtemp(prefix="time_to_learned-"))
        runs = [run_experiment([int(s) for s in a.seeds.split(",")], out)]
    results = {}
    for r in runs: results.update(read_run(r))
    print(f"\nTime to a learned encoder (online kNN >= untrained twin + {100 * MARGIN:.0f} points), from {len(runs)} run(s):\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
