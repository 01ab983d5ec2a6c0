#!/usr/bin/env python
"""bf16 autocast on the CPU, measured before it is adopted (issue 18 item 2): one training step of I-JEPA and of
LeJEPA in fp32 and under `torch.autocast("cpu", dtype=torch.bfloat16)`, at several model widths, in one process.

    python bench/bf16_step.py                 # widths 64 (the cpu tier, 1 and 2 threads), 96, 128, 192 (2 threads)
    python bench/bf16_step.py --steps 8       # fewer timed steps (a quick check that it runs)
    python bench/bf16_step.py --only "ViT 128x6"

The library decides per step (`jepa_nb.optim.bf16_autocast_on`): on a CPU with bf16 units, autocast from
`CPU_BF16_MIN_WIDTH` up, which this script's table sets. To time both modes at every width, the script replaces
`PretrainMethod.autocast` for its own process with one that follows its own switch. Everything else is the
library's: `build_model`, `make_loader` (the method's own batches), `hparams_at`, `method_step`. The fp32 and the bf16
model start from the same seed and take the same batches, alternately step by step (so a change of machine load
hits both); the median step time after 4 warm-up steps is reported, with the loss of both at three steps (bf16 must
train the same way, not only faster). Whether the CPU has bf16 units is printed from /proc/cpuinfo (avx512_bf16 /
amx_bf16). Record the table in bench/RESULTS.md with the machine and its load.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from jepa_nb.core import cpu_bf16_units
from jepa_nb.data import load_data
from jepa_nb.methods import PretrainConfig, build_model, hparams_at, make_loader
from jepa_nb.optim import CPU_BF16_MIN_WIDTH, PretrainMethod, method_step, param_groups
from jepa_nb.transforms import dataset_stats, make_transform

SIZES = {  # name -> (dataset, channels, model fields, threads)
    "ViT 192x6 (bench)": ("shapes", 3, dict(embed_dim=192, depth=6, num_heads=3, pred_emb_dim=96, pred_depth=4), 2),
    "ViT 128x6": ("shapes", 3, dict(embed_dim=128, depth=6, num_heads=4, pred_emb_dim=64, pred_depth=4), 2),
    "ViT 96x6": ("shapes", 3, dict(embed_dim=96, depth=6, num_heads=3, pred_emb_dim=48, pred_depth=4), 2),
    "ViT 64x3 (cpu tier)": ("mnist5k", 1, dict(embed_dim=64, depth=3, num_heads=4, pred_emb_dim=32, pred_depth=3), 1),
    "ViT 64x3 (cpu tier, 2 threads)": ("mnist5k", 1, dict(embed_dim=64, depth=3, num_heads=4, pred_emb_dim=32,
                                                          pred_depth=3), 2),
}
_CPU_BF16 = {"on": False}


def _autocast(self, x: torch.Tensor):
    "The library's guard, with the CPU allowed when this script says so."
    on = _CPU_BF16["on"] or (self.bf16 and x.device.type == "cuda")
    return torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=on)


def measure(method: str, dataset: str, chans: int, fields: dict, steps: int) -> dict:
    cfg = PretrainConfig(method=method, dataset=dataset, batch_size=128, img_size=32, device="cpu", lr=2e-3,
                         sigreg_weight=0.05, **fields)               # the course's recipes (experiment 10)
    data = load_data(dataset, "train")
    mean, std = dataset_stats(data)
    batches = list(make_loader(cfg, data, make_transform(True, 32, mean, std), 0, steps + 4))
    runs = {}
    for mode in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = build_model(cfg, chans)
        runs[mode] = (model, torch.optim.AdamW(param_groups(model), lr=cfg.lr))
    times, losses = {"fp32": [], "bf16": []}, {"fp32": [], "bf16": []}
    for i, batch in enumerate(batches):
        for mode, (model, opt) in runs.items():
            _CPU_BF16["on"] = mode == "bf16"
            t = time.perf_counter()
            out = method_step(model, opt, batch, hparams_at(cfg, i, 10 * len(batches), len(batches)))
            if i >= 4: times[mode].append(time.perf_counter() - t)
            losses[mode].append(out["loss"])
    _CPU_BF16["on"] = False
    f, b = statistics.median(times["fp32"]), statistics.median(times["bf16"])
    at = (0, len(batches) // 2, len(batches) - 1)
    return dict(fp32_ms=1000 * f, bf16_ms=1000 * b, speedup=f / b, loss_fp32=[losses["fp32"][k] for k in at],
                loss_bf16=[losses["bf16"][k] for k in at], at=[k + 1 for k in at])


def profile(method: str, dataset: str, chans: int, fields: dict, steps: int = 6, top: int = 12) -> None:
    "Where a step's time goes in fp32 and in bf16: torch.profiler's self-CPU time per op, summed over `steps` steps."
    from torch.profiler import ProfilerActivity, profile as torch_profile
    cfg = PretrainConfig(method=method, dataset=dataset, batch_size=128, img_size=32, device="cpu", lr=2e-3,
                         sigreg_weight=0.05, **fields)
    data = load_data(dataset, "train")
    mean, std = dataset_stats(data)
    batches = list(make_loader(cfg, data, make_transform(True, 32, mean, std), 0, steps + 2))
    for mode in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = build_model(cfg, chans)
        opt = torch.optim.AdamW(param_groups(model), lr=cfg.lr)
        _CPU_BF16["on"] = mode == "bf16"
        for i, b in enumerate(batches[:2]): method_step(model, opt, b, hparams_at(cfg, i, 100, 10))   # warm-up
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for i, b in enumerate(batches[2:]): method_step(model, opt, b, hparams_at(cfg, i + 2, 100, 10))
        _CPU_BF16["on"] = False
        ev = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in ev)
        print(f"\n{method} {mode}: {total / 1e3 / steps:.0f} ms of op self-time per step; the top {top} ops:")
        print("| op | calls / step | self ms / step | share |\n|---|---|---|---|")
        for e in ev[:top]:
            print(f"| {e.key} | {e.count / steps:.0f} | {e.self_cpu_time_total / 1e3 / steps:.1f} | "
                  f"{100 * e.self_cpu_time_total / total:.1f} % |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per mode (after 4 warm-up steps)")
    ap.add_argument("--only", action="append", choices=list(SIZES), help="measure only these sizes (repeatable)")
    ap.add_argument("--profile", action="store_true", help="instead of timing: the op profile of an I-JEPA step, "
                                                             "fp32 and bf16, at each size asked for with --only")
    a = ap.parse_args(argv)
    PretrainMethod.autocast = _autocast
    if a.profile:
        for name in a.only or ["ViT 64x3 (cpu tier)"]:
            dataset, chans, fields, threads = SIZES[name]
            torch.set_num_threads(threads)
            print(f"## {name}, {threads} thread(s)")
            profile("ijepa", dataset, chans, fields)
        return 0
    print(f"CPU bf16 units: {', '.join(cpu_bf16_units()) or 'none'}; the library's threshold: width {CPU_BF16_MIN_WIDTH}; torch {torch.__version__}; load average {os.getloadavg()[0]:.2f}")
    print("| model | method | threads | fp32 step | bf16 step | bf16 speed-up | loss fp32 / bf16 at steps |")
    print("|---|---|---|---|---|---|---|")
    for name, (dataset, chans, fields, threads) in SIZES.items():
        if a.only and name not in a.only: continue
        torch.set_num_threads(threads)
        for method in ("ijepa", "lejepa"):
            r = measure(method, dataset, chans, fields, a.steps)
            loss = " · ".join(f"{x:.4f} / {y:.4f}" for x, y in zip(r["loss_fp32"], r["loss_bf16"]))
            print(f"| {name} | {method} | {threads} | {r['fp32_ms']:.0f} ms | {r['bf16_ms']:.0f} ms | {r['speedup']:.2f}× | "
                  f"{loss} ({', '.join(map(str, r['at']))}) |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
