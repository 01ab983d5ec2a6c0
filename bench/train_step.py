#!/usr/bin/env python
"""Throughput and peak memory of one full I-JEPA training step, and the cost of the mask collator.

One step = schedules -> target encoder on the full images (no grad) -> context encoder on the kept
tokens -> predictor (K*B pass) -> loss -> backward -> AdamW -> EMA: `jepa_nb.train.ijepa_step`, the
very function `train_ijepa` calls each step. Data loading is left out of the step; the collator
(random-resized crop + normalise + multi-block masks, on a uint8 batch as the DataLoader hands it) is
timed on its own and reported as a fraction of the step.

Default config (issue 2): ViT 192x6 (3 heads), 32x32 RGB images, patch 4 (8x8 grid, 64 tokens),
batch 128, predictor 96x4, 2 torch threads, multi-block masks with the paper's scales.

    python bench/train_step.py                 # the stated config; prints a markdown table
    python bench/train_step.py --quick         # a tiny config, a few steps (checks that it runs)
    python bench/train_step.py --json out.json # also write the numbers

Timing: `--warmup` steps are discarded (AdamW allocates its state on step 1, caches warm up), then
the median (and 10th/90th percentiles) of `--steps` timed steps. The masks of the timed steps are
drawn in advance from a seeded pool, so the context length M varies from step to step as in training.
Measure on an otherwise idle machine: with other processes busy, 2 torch threads on 2 cores were
observed ~70x slower per step than 1 thread (OpenMP threads waiting on each other).

Peak memory: on CUDA, torch.cuda.max_memory_allocated over the timed steps (tensors only, not the
caching allocator's reserve). On CPU, tracemalloc does not see torch's allocations, so we report the
process's peak resident set size (resource.getrusage ru_maxrss) and its increase over the steps
(measured from just before the first step, after the model, optimizer and batches exist): that delta
is the step's working memory plus the optimizer state AdamW allocates on its first step. ru_maxrss
is a high-water mark, so the delta is a lower bound when an earlier phase peaked higher.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import torch

from jepa_nb.core import get_device
from jepa_nb.data import make_transform
from jepa_nb.ema import ema_momentum_at, lr_at, param_groups, wd_at
from jepa_nb.masks import MaskCollator
from jepa_nb.train import IJEPAConfig, build_ijepa, build_masker, ijepa_step

QUICK = dict(embed_dim=32, depth=2, num_heads=2, pred_emb_dim=16, pred_depth=1, batch_size=16, warmup=1, steps=3, collate_reps=3)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--embed-dim", type=int, default=192, help="encoder width")
    a("--depth", type=int, default=6, help="encoder blocks")
    a("--num-heads", type=int, default=3, help="encoder heads")
    a("--mlp-ratio", type=float, default=4.0)
    a("--pred-emb-dim", type=int, default=96, help="predictor width")
    a("--pred-depth", type=int, default=4, help="predictor blocks")
    a("--pred-num-heads", type=int, default=None, help="predictor heads (default: encoder heads)")
    a("--img-size", type=int, default=32)
    a("--patch-size", type=int, default=4)
    a("--in-chans", type=int, default=3)
    a("--batch-size", type=int, default=128)
    a("--masking", default="multiblock", choices=["multiblock", "single", "random"])
    a("--min-keep", type=int, default=4, help="min context patches (paper 10; <= 8 on an 8x8 grid)")
    a("--loss", default="smooth_l1", choices=["smooth_l1", "l2"])
    a("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    a("--device", default="cpu", help="cpu | cuda | auto")
    a("--no-bf16", action="store_true", help="disable bf16 autocast on CUDA (never used on CPU)")
    a("--warmup", type=int, default=3, help="untimed steps first")
    a("--steps", type=int, default=20, help="timed steps (median reported)")
    a("--collate-reps", type=int, default=20, help="timed collator calls (median reported)")
    a("--seed", type=int, default=0)
    a("--quick", action="store_true", help=f"tiny config to check the script runs: {QUICK}")
    a("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items(): setattr(args, k, v)
    return args


def maxrss_mib() -> float:
    "Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 2**10


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = get_device(args.device)
    cuda = device.type == "cuda"
    cfg = IJEPAConfig(img_size=args.img_size, patch_size=args.patch_size, embed_dim=args.embed_dim, depth=args.depth,
                      num_heads=args.num_heads, mlp_ratio=args.mlp_ratio, pred_emb_dim=args.pred_emb_dim, pred_depth=args.pred_depth,
                      pred_num_heads=args.pred_num_heads, masking=args.masking, min_keep=args.min_keep, batch_size=args.batch_size,
                      loss=args.loss, seed=args.seed, bf16=not args.no_bf16)
    B, n_steps = args.batch_size, args.warmup + args.steps
    model = build_ijepa(cfg, args.in_chans).to(device).train()
    opt = torch.optim.AdamW(param_groups(model.encoder, model.predictor), lr=cfg.lr, betas=(0.9, 0.999))
    n_params = sum(p.numel() for p in model.encoder.parameters()), sum(p.numel() for p in model.predictor.parameters())

    # --- the collator alone: uint8 images -> crop + normalise + masks, per batch --------------
    g = torch.Generator().manual_seed(args.seed)
    raw = torch.randint(0, 256, (B, args.in_chans, args.img_size, args.img_size), dtype=torch.uint8, generator=g)
    labels = torch.zeros(B, dtype=torch.long)
    masker = build_masker(cfg)
    collate = MaskCollator(masker, seed=args.seed, transform=make_transform(True, args.img_size, crop_scale=cfg.crop_scale))
    t_coll, t_mask, batches = [], [], []
    for s in range(max(args.collate_reps, n_steps) + 1):
        t0 = time.perf_counter(); out = collate({"images": raw, "labels": labels, "step": s}); t1 = time.perf_counter()
        collate.sample_masks(B, torch.Generator().manual_seed(s)); t2 = time.perf_counter()
        if s > 0 and len(t_coll) < args.collate_reps: t_coll.append(t1 - t0); t_mask.append(t2 - t1)   # s = 0 warms up
        if len(batches) < n_steps:
            batches.append({**out, "images": out["images"].to(device), "ctx_idx": out["ctx_idx"].to(device),
                            "tgt_idx": [t.to(device) for t in out["tgt_idx"]]})

    # --- the training step ------------------------------------------------------------------
    if cuda: torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(device)
    mem0, alloc0 = maxrss_mib(), (torch.cuda.memory_allocated(device) / 2**20 if cuda else None)
    times, losses = [], []
    for step, batch in enumerate(batches):
        if step == args.warmup and cuda: torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        lr, wd, m = lr_at(step, n_steps, n_steps // 10, cfg.start_lr, cfg.lr, cfg.final_lr), wd_at(step, n_steps), ema_momentum_at(step, n_steps, *cfg.ema)
        loss = ijepa_step(model, opt, batch, lr=lr, weight_decay=wd, momentum=m, loss=cfg.loss, bf16=cfg.bf16)["loss"]  # one host sync
        if cuda: torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        losses.append(loss)
        if step >= args.warmup: times.append(dt)
    ctx_tokens = [b["ctx_idx"].shape[1] for b in batches]

    step_s, coll_s, mask_s = statistics.median(times), statistics.median(t_coll), statistics.median(t_mask)
    res = dict(
        device=str(device), device_name=torch.cuda.get_device_name(device) if cuda else (platform.processor() or platform.machine()),
        cpu_count=os.cpu_count(), threads=torch.get_num_threads(), torch=torch.__version__, bf16=bool(cfg.bf16 and cuda),
        config=dict(embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads, pred_emb_dim=cfg.pred_emb_dim, pred_depth=cfg.pred_depth,
                    pred_num_heads=cfg.pred_num_heads or cfg.num_heads, img_size=cfg.img_size, patch_size=cfg.patch_size, in_chans=args.in_chans,
                    tokens=cfg.grid[0] * cfg.grid[1], batch_size=B, masking=cfg.masking, num_pred_masks=masker.num_pred_masks, loss=cfg.loss),
        params_encoder=n_params[0], params_predictor=n_params[1],
        ctx_tokens_median=statistics.median(ctx_tokens), warmup=args.warmup, steps=len(times),
        step_ms_median=1e3 * step_s, step_ms_p10=1e3 * pct(times, 0.1), step_ms_p90=1e3 * pct(times, 0.9),
        images_per_s=B / step_s,
        collate_ms=1e3 * coll_s, masks_ms=1e3 * mask_s, collate_over_step=coll_s / step_s, masks_over_step=mask_s / step_s,
    )
    if cuda:
        res.update(memory_method="torch.cuda.max_memory_allocated (timed steps)", peak_mib=torch.cuda.max_memory_allocated(device) / 2**20,
                   before_steps_mib=alloc0)
    else:
        mem1 = maxrss_mib()
        res.update(memory_method="resource.getrusage ru_maxrss (process peak RSS)", peak_mib=mem1, before_steps_mib=mem0, step_delta_mib=mem1 - mem0)
    print_table(res, quick=args.quick)
    if args.json:
        with open(args.json, "w") as f: json.dump(res, f, indent=2)
    return res


def print_table(r: dict, quick: bool = False) -> None:
    c = r["config"]
    print(f"\n### I-JEPA training step{' (--quick: not a real measurement)' if quick else ''}\n")
    print(f"ViT {c['embed_dim']}x{c['depth']} ({c['num_heads']} heads, {r['params_encoder'] / 1e6:.2f} M params), "
          f"predictor {c['pred_emb_dim']}x{c['pred_depth']} ({r['params_predictor'] / 1e6:.2f} M), {c['img_size']}x{c['img_size']}x{c['in_chans']} "
          f"images, patch {c['patch_size']} ({c['tokens']} tokens), batch {c['batch_size']}, {c['masking']} masks "
          f"(median context {r['ctx_tokens_median']:.0f} tokens, K={c['num_pred_masks']}), loss {c['loss']}, bf16 {r['bf16']}\n")
    print(f"device {r['device']} ({r['device_name']}), {r['threads']} torch threads of {r['cpu_count']} CPUs, torch {r['torch']}; "
          f"{r['warmup']} warm-up + {r['steps']} timed steps\n")
    rows = [("step time, median (ms)", f"{r['step_ms_median']:.1f}"),
            ("step time, p10 / p90 (ms)", f"{r['step_ms_p10']:.1f} / {r['step_ms_p90']:.1f}"),
            ("images / s", f"{r['images_per_s']:.1f}"),
            ("peak memory (MiB)", f"{r['peak_mib']:.0f}"),
            ("collator per batch: crop + masks (ms)", f"{r['collate_ms']:.2f}"),
            ("  of which masks only (ms)", f"{r['masks_ms']:.2f}"),
            ("collator / step", f"{100 * r['collate_over_step']:.2f} %")]
    if "step_delta_mib" in r:
        rows.insert(4, ("peak RSS increase during the steps (MiB)", f"{r['step_delta_mib']:.0f}"))
    else:
        rows.insert(4, ("allocated before the steps (MiB)", f"{r['before_steps_mib']:.0f}"))
    print("| metric | value |\n|---|---|")
    for k, v in rows: print(f"| {k} | {v} |")
    print(f"\nmemory: {r['memory_method']}")


if __name__ == "__main__":
    main()
