#!/usr/bin/env python
"""Run every lesson through nbdev's test runner, two at a time, the longest lessons first.

    python ci/test_lessons.py              # what `make test` runs: 2 worker processes, one torch thread each
    python ci/test_lessons.py --jobs 1     # one after the other

This is `nbdev-test --n-workers 2 --timing --skip-file-re '^(_|\\.|1[0-9]_)'` with one change: the order. nbdev-test
hands the notebooks to its workers in file order, so the longest lesson (08, about twice the next) started halfway
through and one worker idled while it finished. Here the same `nbdev.test.test_nb` runs on the same worker pool
(`fastcore.parallel`, workers reused so each imports torch once) with the same settings (`tst_flags`,
`cell_timeout`, run from `nbs/`), the known long lessons handed out first (longest-processing-time-first).
Experiments (1x_) are run by the reproduction gate, not here. Exit status 1 names the notebooks that failed.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from fastcore.parallel import parallel
from fastcore.xtras import working_directory
from nbdev.config import get_config
from nbdev.test import test_nb

ROOT = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"^(_|\.|1[0-9]_)")          # the experiments and hidden/private notebooks, as before
# the long lessons, longest first (`--timing` on 2 cores: 08 ~140 s, 06 ~70 s, 06a ~25 s, 05d ~20 s, 09/01 ~15 s);
# only the order depends on this list, never what runs
LONGEST_FIRST = ["08_jepa_score", "06_train", "06a_distributed", "05d_vicreg", "09_runner", "01_data", "07_eval"]


def lessons() -> list[Path]:
    "The lessons to test: the known long ones first (in LONGEST_FIRST's order), then the rest in file order."
    nbs = sorted(p.absolute() for p in (ROOT / "nbs").glob("*.ipynb") if not SKIP.match(p.name))
    rank = {s: i for i, s in enumerate(LONGEST_FIRST)}
    return sorted(nbs, key=lambda p: rank.get(p.stem, len(rank)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2: CI's cores)")
    a = ap.parse_args(argv)
    files, cfg, t0 = lessons(), get_config(), time.time()
    skip_flags = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags or [])
    with working_directory(cfg.nbs_path):
        setup = cfg.get("test_setup")
        if setup: raise SystemExit("settings name a test_setup hook: run nbdev-test, which calls it")
        results = parallel(test_nb, files, skip_flags=skip_flags, force_flags=[], n_workers=max(1, a.jobs),
                           basepath=cfg.config_path, pause=0.01, do_print=False, verbose=False, save=False,
                           cell_timeout=cfg.cell_timeout or None, cell_timing_min=cfg.get("cell_timing_min"))
    passed, times = zip(*results)
    for i in sorted(range(len(files)), key=lambda i: -times[i]): print(f"{files[i].name}: {int(times[i])} secs")
    failed = [f.name for ok, f in zip(passed, files) if not ok]
    print(f"{len(files) - len(failed)} of {len(files)} lessons passed in {time.time() - t0:.0f} s")
    if failed:
        sys.stderr.write("lessons that failed (their errors are above):\n\t" + "\n\t".join(failed) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
