#!/usr/bin/env python
"""Speed *and work* of one full I-JEPA training step: FLOPs, achieved GFLOP/s, the machine's GEMM ceiling, and the
official facebookresearch/ijepa step on the same batches.

One step = schedules -> target encoder on the full images (no grad) -> context encoder on the kept tokens ->
predictor (K*B pass) -> loss -> backward -> AdamW -> EMA: `jepa_nb.optim.method_step` on `jepa_nb.ijepa.IJEPA`, the very step
`pretrain` calls each step. Data loading is left out of the step; the collator (random-resized crop +
normalise + multi-block masks, on a uint8 batch as the DataLoader hands it) is timed on its own.

Default config: ViT 192x6 (3 heads), 32x32 RGB images, patch 4 (8x8 grid, 64 tokens), batch 128, predictor
96x4, 2 torch threads, multi-block masks with the paper's scales, min_keep 4.

Equal work. A step's work is set by its masks: the context length M (context-encoder and predictor tokens) and
the target size T. `--masks` picks who draws them:
  library   the library's `MultiBlockMasker` + `MaskCollator` (what training uses; median M about 20 here);
  official  the official `MaskCollator`'s statistics, re-implemented here from its rules (src/masks/multiblock.py):
            one uniform draw sets both the scale and the aspect ratio of the target blocks; block sides are
            capped at grid-1; corners are drawn in [0, H-h) x [0, W-w); the context block is re-drawn until it
            keeps more than min_keep patches outside the K targets, and after every 20 failures one more target
            (the last first) stops constraining it; every context in the batch is cut to the batch's smallest,
            keeping its *first* indices (`truncate_contexts(..., rule="first")`). On the 8x8 grid with min_keep 4
            this keeps 11.2 context tokens on average over 150 batches of 128 (the official collator: 11.3).
  both      (default) both, as separate columns.
`--official PATH` (or the env var IJEPA_OFFICIAL) points at a checkout of facebookresearch/ijepa (the folder
holding `src/`); its encoder, predictor, optimizer set-up and the body of its `train_step` (src/train.py) then
run on the *same batches* as ours (official-statistics masks), alternated with ours step by step, so the two are
compared at equal work and under the same machine load. Nothing of it is copied here: it is imported at run time.

Work and the ceiling. FLOPs per step are counted with `torch.utils.flop_counter` on meta-device copies of the
models (see bench/_common.py: on CPU the fused attention kernel is invisible to the counter). Between steps the
script times a few fp32 GEMMs of the model's own shapes and a 2048^3 square one with the same threads (the GEMM
ceiling: the best of them, median over the probes); "of GEMM ceiling" is a step's achieved GFLOP/s over the
ceiling of its own round, in that step's own dtype. On CUDA the probe is bf16 (with autocast) and MFU against the device's data-sheet peak
is printed too.

    python bench/train_step.py --official ~/src/ijepa       # the table of bench/RESULTS.md
    python bench/train_step.py --quick                      # a tiny config, a few steps (checks that it runs)
    python bench/train_step.py --json out.json              # also write the numbers

Timing: `--warmup` rounds are discarded (AdamW allocates its state on step 1, caches warm up), then `--steps`
timed rounds; each round runs every variant once on that round's batch (in a rotating order) and one GEMM probe.
Ratios (ours vs official, fraction of the ceiling) are taken within a round, then the median over rounds, which
keeps them meaningful on a machine whose load drifts. Measure on an otherwise idle machine all the same: with
other processes busy, 2 torch threads on 2 cores were observed ~70x slower per step than 1 thread.

Peak memory: on CUDA, torch.cuda.max_memory_allocated per variant over its timed steps. On CPU, the process's peak
RSS (resource.getrusage) and its increase over the steps, for all variants together (a high-water mark).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import GemmProbe, count_flops, cuda_peak_tflops, gemm_shapes, load_line, machine_line, maxrss_mib, pct, sync

from jepa_nb.core import get_device
from jepa_nb.transforms import make_transform
from jepa_nb.ema import ema_momentum_at
from jepa_nb.masks import MaskCollator, truncate_contexts
from jepa_nb.ijepa import IJEPA, ijepa_loss, ijepa_targets
from jepa_nb.masks import MASKER_KINDS, apply_masks, build_masker
from jepa_nb.vit import ViTEncoder
from jepa_nb.methods import PretrainConfig
from jepa_nb.optim import bf16_autocast_on, method_step
from jepa_nb.methods import hparams_at

try:
    from jepa_nb.optim import param_groups
except ImportError:                     # before lesson 05 split its optimiser helpers into jepa_nb.optim
    from jepa_nb.ema import param_groups

QUICK = dict(embed_dim=32, depth=2, num_heads=2, pred_emb_dim=16, pred_depth=1, batch_size=16, warmup=1, steps=3, collate_reps=3)
MASK_MODES = ("library", "official")


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
    a("--masking", default="multiblock", choices=list(MASKER_KINDS), help="the library masker's kind")
    a("--masks", default="both", choices=[*MASK_MODES, "both"],
      help="who draws the masks: the library's collator, the official collator's statistics, or both (see above)")
    a("--min-keep", type=int, default=4, help="min context patches (paper 10; <= 8 on an 8x8 grid)")
    a("--loss", default="smooth_l1", choices=["smooth_l1", "l2"])
    a("--query-only", action="store_true",
      help="also time, on the library's masks, the step with full last blocks (before issue 18: the target encoder's "
           "last block computed every token) and with the predictor's last block for its mask tokens only too")
    a("--official", default=os.environ.get("IJEPA_OFFICIAL"),
      help="path to a facebookresearch/ijepa checkout (the folder with src/): also time its step on the same batches (env IJEPA_OFFICIAL)")
    a("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    a("--device", default="cpu", help="cpu | cuda | auto")
    a("--no-bf16", action="store_true", help="disable bf16 autocast (the library uses it on CUDA, and on CPUs with bf16 "
                                             "units from width CPU_BF16_MIN_WIDTH: then fp32 twins of our step are timed too)")
    a("--warmup", type=int, default=3, help="untimed rounds first")
    a("--steps", type=int, default=20, help="timed rounds (medians reported)")
    a("--collate-reps", type=int, default=20, help="timed collator calls (median reported)")
    a("--seed", type=int, default=0)
    a("--quick", action="store_true", help=f"tiny config to check the script runs: {QUICK}")
    a("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items(): setattr(args, k, v)
    if args.official and not (Path(args.official) / "src" / "models" / "vision_transformer.py").is_file():
        p.error(f"--official {args.official!r} is not a facebookresearch/ijepa checkout: no src/models/vision_transformer.py in it")
    if args.masking != "multiblock":
        if args.official: p.error("--official runs the official multi-block step: use --masking multiblock")
        if args.masks == "official": p.error("--masks official draws multi-block masks: use --masking multiblock")
        args.masks = "library"                                           # 'both': the official statistics exist for multi-block only
    return args


# --- masks with the official collator's statistics ----------------------------------------------------------------
def official_stat_masks(B: int, grid, g: torch.Generator, enc_mask_scale=(0.85, 1.0), pred_mask_scale=(0.15, 0.2),
                        aspect_ratio=(0.75, 1.5), num_pred_masks: int = 4, min_keep: int = 4, timeout: int = 20):
    "Context index rows (B, M) and K target index tensors (B, T) drawn by the official MaskCollator's rules (module docstring)."
    H, W = grid

    def block_size(scale, ar):
        r = torch.rand(1, generator=g).item()                        # one draw for the scale and the aspect ratio
        n = int(H * W * (scale[0] + r * (scale[1] - scale[0])))
        a = ar[0] + r * (ar[1] - ar[0])
        return max(1, min(round(math.sqrt(n * a)), H - 1)), max(1, min(round(math.sqrt(n / a)), W - 1))

    (ph, pw), (eh, ew) = block_size(pred_mask_scale, aspect_ratio), block_size(enc_mask_scale, (1.0, 1.0))
    if eh * ew <= min_keep: raise ValueError(f"a {eh}x{ew} context block can never keep more than min_keep={min_keep} patches")
    K, r, c = num_pred_masks, torch.arange(H), torch.arange(W)

    def rect(top, left, h, w):                                       # corners (...,) -> (..., H, W) bool
        return (((r >= top[..., None]) & (r < top[..., None] + h))[..., :, None]
                & ((c >= left[..., None]) & (c < left[..., None] + w))[..., None, :])

    t_top, t_left = torch.randint(0, H - ph, (B, K), generator=g), torch.randint(0, W - pw, (B, K), generator=g)
    targets = rect(t_top, t_left, ph, pw)                            # (B, K, H, W)
    ctx, todo = torch.zeros(B, H, W, dtype=torch.bool), torch.ones(B, dtype=torch.bool)
    fails, relaxed = torch.zeros(B, dtype=torch.long), torch.zeros(B, dtype=torch.long)
    while todo.any():
        cand = rect(torch.randint(0, H - eh, (B,), generator=g), torch.randint(0, W - ew, (B,), generator=g), eh, ew)
        active = (torch.arange(K) < (K - relaxed)[:, None])[..., None, None]     # (B, K, 1, 1): targets still constraining
        cand = cand & ~(targets & active).any(1)
        ok = todo & (cand.flatten(1).sum(1) > min_keep)
        ctx[ok] = cand[ok]
        bad = todo & ~ok
        fails[bad] += 1
        relaxed[bad & (fails % timeout == 0)] += 1
        todo = bad
    ctx = ctx.flatten(1)
    ctx_idx = truncate_contexts(ctx, int(ctx.sum(1).min()), "first")
    start = t_top * W + t_left                                        # (B, K)
    offsets = (torch.arange(ph)[:, None] * W + torch.arange(pw)).reshape(-1)
    return ctx_idx, [start[:, k, None] + offsets for k in range(K)]


def official_collator_stats(path: str, cfg: PretrainConfig, B: int, n: int) -> dict:
    "Mean context / target tokens of the official MaskCollator itself over n batches (a check of the statistics above)."
    import logging
    sys.path.insert(0, str(Path(path).resolve()))
    from src.masks.multiblock import MaskCollator as OfficialCollator
    logging.getLogger().setLevel(logging.ERROR)
    torch.manual_seed(0)
    col = OfficialCollator(input_size=(cfg.img_size, cfg.img_size), patch_size=cfg.patch_size, enc_mask_scale=cfg.enc_mask_scale,
                           pred_mask_scale=cfg.pred_mask_scale, aspect_ratio=cfg.aspect_ratio, nenc=1, npred=cfg.num_pred_masks,
                           min_keep=cfg.min_keep, allow_overlap=cfg.allow_overlap)
    M, T = [], []
    for _ in range(n):
        _, me, mp = col([(torch.zeros(1), 0)] * B)
        M.append(me[0].shape[1]); T.append(mp[0].shape[1])
    return dict(ctx_mean=statistics.mean(M), tgt_mean=statistics.mean(T), batches=n)


# --- the official step (imported from a checkout, run as its src/train.py runs it) --------------------------------
class OfficialStep:
    "The official encoder, predictor, EMA target, init_opt and train_step body, on a batch of ours."
    def __init__(self, path: str, cfg: PretrainConfig, in_chans: int, total_steps: int, device, bf16: bool):
        import logging
        import warnings
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")   # its float(loss)
        sys.path.insert(0, str(Path(path).resolve()))
        import src.models.vision_transformer as vit
        from src.helper import init_opt
        from src.masks.utils import apply_masks
        from src.utils.distributed import AllReduce
        from src.utils.logging import grad_logger
        from src.utils.tensors import repeat_interleave_batch
        logging.getLogger().setLevel(logging.WARNING)                   # its modules set INFO logging on import; init_opt logs at INFO
        self.apply_masks, self.AllReduce, self.grad_logger, self.repeat = apply_masks, AllReduce, grad_logger, repeat_interleave_batch
        torch.manual_seed(cfg.seed)
        self.encoder = vit.VisionTransformer(img_size=[cfg.img_size], patch_size=cfg.patch_size, in_chans=in_chans, embed_dim=cfg.embed_dim,
                                             depth=cfg.depth, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio, qkv_bias=True,
                                             norm_layer=lambda d: torch.nn.LayerNorm(d, eps=1e-6)).to(device)
        self.predictor = vit.vit_predictor(num_patches=self.encoder.patch_embed.num_patches, embed_dim=cfg.embed_dim,
                                           predictor_embed_dim=cfg.pred_emb_dim, depth=cfg.pred_depth,
                                           num_heads=cfg.pred_num_heads or cfg.num_heads).to(device)
        self.target_encoder = copy.deepcopy(self.encoder)
        for p in self.target_encoder.parameters(): p.requires_grad = False
        self.optimizer, self.scaler, self.scheduler, self.wd_scheduler = init_opt(
            self.encoder, self.predictor, iterations_per_epoch=total_steps, start_lr=cfg.start_lr, ref_lr=cfg.lr, warmup=0.1,
            num_epochs=1, wd=cfg.weight_decay, final_wd=cfg.final_weight_decay, final_lr=cfg.final_lr, use_bfloat16=bf16)
        self.bf16, self.device, self.total = bf16, torch.device(device), total_steps
        self.params = sum(p.numel() for p in self.encoder.parameters()), sum(p.numel() for p in self.predictor.parameters())

    def forward_loss(self, encoder, predictor, target_encoder, imgs, masks_enc, masks_pred):
        with torch.no_grad():                                           # forward_target
            h = target_encoder(imgs)
            h = F.layer_norm(h, (h.size(-1),))
            B = len(h)
            h = self.apply_masks(h, masks_pred)
            h = self.repeat(h, B, repeat=len(masks_enc))
        z = predictor(encoder(imgs, masks_enc), masks_enc, masks_pred)  # forward_context
        return self.AllReduce.apply(F.smooth_l1_loss(z, h))

    def __call__(self, batch, step: int) -> float:
        imgs, masks_enc, masks_pred = batch["images"], [batch["ctx_idx"]], list(batch["tgt_idx"])
        self.scheduler.step(); self.wd_scheduler.step()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.forward_loss(self.encoder, self.predictor, self.target_encoder, imgs, masks_enc, masks_pred)
        if self.bf16:
            self.scaler.scale(loss).backward(); self.scaler.step(self.optimizer); self.scaler.update()
        else:
            loss.backward(); self.optimizer.step()
        self.grad_logger(self.encoder.named_parameters())
        self.optimizer.zero_grad()
        m = ema_momentum_at(step, self.total)                           # the official momentum schedule is the same line
        with torch.no_grad():
            for q, k in zip(self.encoder.parameters(), self.target_encoder.parameters()):
                k.data.mul_(m).add_((1. - m) * q.detach().data)
        return float(loss)

    def flop_counter(self):
        "A function batch -> FLOPs of one step (forward + backward), counted on meta copies."
        enc, pred, tgt = (copy.deepcopy(m).to("meta") for m in (self.encoder, self.predictor, self.target_encoder))
        def run(b):
            imgs, ctx, tgt_idx = _meta_batch(b)
            self.forward_loss(enc, pred, tgt, imgs, [ctx], tgt_idx).backward()
        return lambda b: count_flops(lambda: run(b))


def _meta_batch(b):
    return (torch.empty(b["images"].shape, device="meta"), b["ctx_idx"].to("meta"), [t.to("meta") for t in b["tgt_idx"]])


class FullLastBlock(ViTEncoder):
    "Our encoder computing every token of its last block, then gathering `out_idx` (the step before query-only rows)."
    def forward(self, x, keep_idx=None, out_idx=None):
        y = super().forward(x, keep_idx)
        return y if out_idx is None else apply_masks(y, out_idx)


def last_block_twin(model, full_targets: bool, pred_query_only: bool):
    "A copy of `model` (same weights) whose target encoder computes every last-block token, or whose predictor's doesn't."
    m = copy.deepcopy(model)
    if full_targets: m.target_encoder.__class__ = FullLastBlock
    m.predictor.query_only_last = pred_query_only
    return m


def ours_flop_counter(model, loss: str):
    "A function batch -> FLOPs of one I-JEPA step's forward + backward, counted on a meta copy of the model."
    mm = copy.deepcopy(model).to("meta")
    def run(b):
        imgs, ctx, tgt = _meta_batch(b)
        with torch.no_grad(): target = ijepa_targets(mm.target_encoder, imgs, tgt)
        ijepa_loss(mm.predictor(mm.encoder(imgs, ctx), ctx, tgt), target, loss).backward()
    return lambda b: count_flops(lambda: run(b))


# --- the bench ----------------------------------------------------------------------------------------------------
def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = get_device(args.device)
    cuda = device.type == "cuda"
    cfg = PretrainConfig(img_size=args.img_size, patch_size=args.patch_size, embed_dim=args.embed_dim, depth=args.depth,
                      num_heads=args.num_heads, mlp_ratio=args.mlp_ratio, pred_emb_dim=args.pred_emb_dim, pred_depth=args.pred_depth,
                      pred_num_heads=args.pred_num_heads, masking=args.masking, min_keep=args.min_keep, batch_size=args.batch_size,
                      loss=args.loss, seed=args.seed, bf16=not args.no_bf16)
    bf16 = bool(cfg.bf16 and cuda)
    cpu_bf16 = device.type == "cpu" and bf16_autocast_on("cpu", cfg.embed_dim, cfg.bf16)   # the library's own decision
    B, n_rounds = args.batch_size, args.warmup + args.steps
    modes = list(MASK_MODES) if args.masks == "both" else [args.masks]
    model = IJEPA.build(cfg, args.in_chans).to(device).train()
    opt = torch.optim.AdamW(param_groups(model), lr=cfg.lr, betas=(0.9, 0.999), fused=True if cuda else None)   # as pretrain builds it
    n_params = sum(p.numel() for p in model.encoder.parameters()), sum(p.numel() for p in model.predictor.parameters())

    # --- batches: the library collator (crop + normalise + masks), and the official statistics' masks ------------
    g = torch.Generator().manual_seed(args.seed)
    raw = torch.randint(0, 256, (B, args.in_chans, args.img_size, args.img_size), dtype=torch.uint8, generator=g)
    labels = torch.zeros(B, dtype=torch.long)
    masker = build_masker(cfg, cfg.grid)
    collate = MaskCollator(masker, seed=args.seed, transform=make_transform(True, args.img_size, crop_scale=cfg.crop_scale))
    t_coll, t_mask, t_off, batches = [], [], [], {m: [] for m in modes}
    to_dev = lambda b: {**b, "images": b["images"].to(device), "ctx_idx": b["ctx_idx"].to(device), "tgt_idx": [t.to(device) for t in b["tgt_idx"]]}
    for s in range(max(args.collate_reps, n_rounds) + 1):
        t0 = time.perf_counter(); out = collate({"images": raw, "labels": labels, "step": s}); t1 = time.perf_counter()
        collate.sample_masks(B, torch.Generator().manual_seed(s)); t2 = time.perf_counter()
        ctx, tgt = official_stat_masks(B, cfg.grid, torch.Generator().manual_seed(10_000 + s), cfg.enc_mask_scale, cfg.pred_mask_scale,
                                       cfg.aspect_ratio, masker.num_pred_masks, cfg.min_keep) if args.masking == "multiblock" else (None, None)
        t3 = time.perf_counter()
        if s > 0 and len(t_coll) < args.collate_reps: t_coll.append(t1 - t0); t_mask.append(t2 - t1); t_off.append(t3 - t2)
        if s < n_rounds:
            if "library" in batches: batches["library"].append(to_dev(out))
            if "official" in batches: batches["official"].append(to_dev({**out, "ctx_idx": ctx, "tgt_idx": tgt}))

    # --- the variants: (name, mask mode, step function, FLOP counter) ---------------------------------------------
    def ours(batch, step):
        hp = hparams_at(cfg, step, n_rounds, n_rounds // 10)
        return method_step(model, opt, {**batch, "step": step}, hp)["loss"]
    variants = [dict(name=f"ours, {m} masks" + (", bf16" if cpu_bf16 else ""), impl="ours", masks=m, fn=ours,
                     flops=ours_flop_counter(model, cfg.loss), dtype="bf16" if bf16 or cpu_bf16 else "fp32") for m in modes]
    if cpu_bf16:                                    # the same step in fp32, for the fp32 and bf16 columns
        fp = copy.deepcopy(model); fp.bf16 = False
        fp_opt = torch.optim.AdamW(param_groups(fp), lr=cfg.lr, betas=(0.9, 0.999))
        def fp_step(batch, step):
            return method_step(fp, fp_opt, {**batch, "step": step}, hparams_at(cfg, step, n_rounds, n_rounds // 10))["loss"]
        variants += [dict(name=f"ours, {m} masks, fp32", impl="ours-fp32", masks=m, fn=fp_step,
                          flops=ours_flop_counter(model, cfg.loss), dtype="fp32") for m in modes]
    if args.query_only and "library" in modes:      # item 1 of issue 18: the same step with other last blocks
        for name, full, pq in [("full last blocks", True, False), ("+ predictor query-only", False, True)]:
            tw = last_block_twin(model, full, pq)
            tw_opt = torch.optim.AdamW(param_groups(tw), lr=cfg.lr, betas=(0.9, 0.999), fused=True if cuda else None)
            def tw_step(batch, step, tw=tw, tw_opt=tw_opt):
                return method_step(tw, tw_opt, {**batch, "step": step}, hparams_at(cfg, step, n_rounds, n_rounds // 10))["loss"]
            variants.append(dict(name=f"ours, {name}", impl="ours-variant", masks="library", fn=tw_step,
                                 flops=ours_flop_counter(tw, cfg.loss), dtype=variants[0]["dtype"]))
    official, off_stats = None, None
    if args.official:
        official = OfficialStep(args.official, cfg, args.in_chans, n_rounds, device, bf16)
        off_mode = "official" if "official" in modes else modes[0]
        variants.append(dict(name=f"official step, {off_mode} masks", impl="official", masks=off_mode, fn=official, flops=official.flop_counter(),
                             dtype="bf16" if bf16 else "fp32"))
        off_stats = official_collator_stats(args.official, cfg, B, 60)

    # FLOPs of every batch each variant runs (cached by the shapes that set them)
    for v in variants:
        cache, v["flops_per_step"] = {}, []
        for b in batches[v["masks"]]:
            key = (tuple(b["ctx_idx"].shape), tuple(b["tgt_idx"][0].shape), len(b["tgt_idx"]))
            if key not in cache: cache[key] = v["flops"](b)
            v["flops_per_step"].append(cache[key])

    # --- the GEMM ceiling: the model's own big GEMMs (target encoder, B*N rows) and a big square one ---------------
    N = cfg.grid[0] * cfg.grid[1]
    shapes = gemm_shapes(B * N, cfg.embed_dim, cfg.mlp_ratio, square=8192 if cuda else 2048)
    probes = {d: GemmProbe(shapes, device, torch.bfloat16 if d == "bf16" else torch.float32)
              for d in sorted({v["dtype"] for v in variants})}          # one ceiling per dtype a variant runs in

    # --- timed rounds: every variant once on the round's batch (rotating order), then one GEMM probe ------------------
    if cuda: torch.cuda.synchronize()
    mem0 = maxrss_mib()
    for v in variants: v.update(times=[], cpu=[], peak=0.0)
    for r in range(n_rounds):
        k = r % len(variants)
        for v in variants[k:] + variants[:k]:
            batch = batches[v["masks"]][r]
            if cuda: torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(device)
            c0, t0 = time.process_time(), time.perf_counter()
            v["fn"](batch, r); sync(device)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if r >= args.warmup:
                v["times"].append(dt); v["cpu"].append(dc)
                if cuda: v["peak"] = max(v["peak"], torch.cuda.max_memory_allocated(device) / 2**20)
        if r >= args.warmup:
            for pr in probes.values(): pr.probe()
    mem1 = maxrss_mib()

    # --- results --------------------------------------------------------------------------------------------------
    ceilings_of = {d: pr.round_ceilings() for d, pr in probes.items()}
    peak_tf = cuda_peak_tflops(torch.cuda.get_device_name(device), bf16) if cuda else None
    rows = []
    for v in variants:
        fl = v["flops_per_step"][args.warmup:]
        gfs = [f / t / 1e9 for f, t in zip(fl, v["times"])]
        b = batches[v["masks"]][args.warmup:]
        row = dict(name=v["name"], impl=v["impl"], masks=v["masks"],
                   ctx_tokens_mean=statistics.mean(x["ctx_idx"].shape[1] for x in b),
                   ctx_tokens_median=statistics.median(x["ctx_idx"].shape[1] for x in b),
                   tgt_tokens_mean=statistics.mean(x["tgt_idx"][0].shape[1] for x in b),
                   gflop_per_step=statistics.mean(fl) / 1e9,
                   step_ms_median=1e3 * statistics.median(v["times"]), step_ms_p10=1e3 * pct(v["times"], 0.1), step_ms_p90=1e3 * pct(v["times"], 0.9),
                   cpu_ms_median=1e3 * statistics.median(v["cpu"]),
                   images_per_s=B / statistics.median(v["times"]), gflops_per_s=statistics.median(gfs),
                   dtype=v["dtype"], of_ceiling=statistics.median(x / c for x, c in zip(gfs, ceilings_of[v["dtype"]])))
        if peak_tf: row["mfu"] = row["gflops_per_s"] / (1e3 * peak_tf)
        if cuda: row["peak_mib"] = v["peak"]
        rows.append(row)
    off = [v for v in variants if v["impl"] == "official"]
    for row, v in zip(rows, variants):   # ours vs official on the same batches, within each round
        if off and v["impl"] in ("ours", "ours-fp32") and v["masks"] == off[0]["masks"]:
            row["vs_official_images_per_s"] = statistics.median(o / t for o, t in zip(off[0]["times"], v["times"]))
            row["vs_official_cpu_time"] = statistics.median(o / t for o, t in zip(off[0]["cpu"], v["cpu"]))
    base = [v for v in variants if v["impl"] == "ours" and v["masks"] == "library"]
    for row, v in zip(rows, variants):   # the query-only variants vs the default step, within each round
        if v["impl"] == "ours-variant" and base:
            row["vs_default_images_per_s"] = statistics.median(t / b for t, b in zip(base[0]["times"], v["times"]))
    res = dict(
        device=str(device), machine=machine_line(device, torch.get_num_threads()), load=load_line(), threads=torch.get_num_threads(),
        torch=torch.__version__, bf16=bf16, cpu_bf16=cpu_bf16, quick=args.quick,
        config=dict(embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads, pred_emb_dim=cfg.pred_emb_dim, pred_depth=cfg.pred_depth,
                    pred_num_heads=cfg.pred_num_heads or cfg.num_heads, img_size=cfg.img_size, patch_size=cfg.patch_size, in_chans=args.in_chans,
                    tokens=N, batch_size=B, masking=cfg.masking, num_pred_masks=masker.num_pred_masks, min_keep=cfg.min_keep, loss=cfg.loss),
        params_encoder=n_params[0], params_predictor=n_params[1], params_official=official.params if official else None,
        warmup=args.warmup, steps=args.steps, rows=rows,
        gemm_ceiling_gflops={d: statistics.median(c) for d, c in ceilings_of.items()},
        gemm_per_shape={d: pr.per_shape() for d, pr in probes.items()},
        device_peak_tflops=peak_tf, official_collator=off_stats,
        collate_ms=1e3 * statistics.median(t_coll), masks_ms=1e3 * statistics.median(t_mask),
        official_stat_masks_ms=1e3 * statistics.median(t_off) if args.masking == "multiblock" else None,
        memory_method=("torch.cuda.max_memory_allocated per variant (timed steps)" if cuda
                       else "resource.getrusage ru_maxrss (process peak RSS, all variants together)"),
        peak_rss_mib=mem1, rss_increase_during_steps_mib=mem1 - mem0,
    )
    lib = [r for r in rows if r["impl"] == "ours" and r["masks"] == "library"]
    if lib: res["collate_over_step"] = res["collate_ms"] / lib[0]["step_ms_median"]
    print_table(res)
    if args.json:
        with open(args.json, "w") as f: json.dump(res, f, indent=2)
    return res


def print_table(r: dict) -> None:
    c, rows = r["config"], r["rows"]
    print(f"\n### I-JEPA training step{' (--quick: not a real measurement)' if r['quick'] else ''}\n")
    print(f"ViT {c['embed_dim']}x{c['depth']} ({c['num_heads']} heads, {r['params_encoder'] / 1e6:.2f} M params), "
          f"predictor {c['pred_emb_dim']}x{c['pred_depth']} ({r['params_predictor'] / 1e6:.2f} M), {c['img_size']}x{c['img_size']}x{c['in_chans']} "
          f"images, patch {c['patch_size']} ({c['tokens']} tokens), batch {c['batch_size']}, {c['masking']} masks "
          f"(K={c['num_pred_masks']}, min_keep {c['min_keep']}), loss {c['loss']}, bf16 autocast "
          f"{'CUDA' if r['bf16'] else 'CPU (bf16 units, the library default at this width)' if r['cpu_bf16'] else 'off'}\n")
    print(f"{r['machine']}; {r['load']}; {r['warmup']} warm-up + {r['steps']} timed rounds\n")
    fmt = [("context tokens M, mean (median)", lambda x: f"{x['ctx_tokens_mean']:.1f} ({x['ctx_tokens_median']:.0f})"),
           ("target tokens T per block, mean", lambda x: f"{x['tgt_tokens_mean']:.1f}"),
           ("GFLOP / step (flop_counter)", lambda x: f"{x['gflop_per_step']:.1f}"),
           ("step time, median (ms)", lambda x: f"{x['step_ms_median']:.1f}"),
           ("step time, p10 / p90 (ms)", lambda x: f"{x['step_ms_p10']:.1f} / {x['step_ms_p90']:.1f}"),
           ("CPU time of the process / step, median (ms)", lambda x: f"{x['cpu_ms_median']:.1f}"),
           ("images / s", lambda x: f"{x['images_per_s']:.1f}"),
           ("achieved GFLOP/s", lambda x: f"{x['gflops_per_s']:.1f}"),
           ("of GEMM ceiling (its dtype's)", lambda x: f"{100 * x['of_ceiling']:.0f} % ({x['dtype']})")]
    if any("mfu" in x for x in rows): fmt.append(("MFU (data-sheet peak)", lambda x: f"{100 * x['mfu']:.1f} %" if "mfu" in x else ""))
    if any("peak_mib" in x for x in rows): fmt.append(("peak memory (MiB)", lambda x: f"{x['peak_mib']:.0f}" if "peak_mib" in x else ""))
    if any("vs_default_images_per_s" in x for x in rows):
        fmt.append(("images/s vs ours, library masks", lambda x: f"{x['vs_default_images_per_s']:.2f}x" if "vs_default_images_per_s" in x else ""))
    if any("vs_official_images_per_s" in x for x in rows):
        fmt.append(("images/s vs official, same batches", lambda x: f"{x['vs_official_images_per_s']:.2f}x" if "vs_official_images_per_s" in x else ""))
        fmt.append(("  the same in CPU time (official / ours)", lambda x: f"{x['vs_official_cpu_time']:.2f}x" if "vs_official_cpu_time" in x else ""))
    print("| metric | " + " | ".join(x["name"] for x in rows) + " |\n|---|" + "---|" * len(rows))
    for name, f in fmt: print(f"| {name} | " + " | ".join(f(x) for x in rows) + " |")
    eq = [x for x in rows if "vs_official_images_per_s" in x]
    for x in eq:
        print(f"\nat equal work ({x['name']} vs the official step on the same batches, {x['gflop_per_step']:.1f} vs "
              f"{[o for o in rows if o['impl'] == 'official'][0]['gflop_per_step']:.1f} GFLOP/step): {x['vs_official_images_per_s']:.2f}x its images/s "
              f"(goal >= 1.3x); {100 * x['of_ceiling']:.0f} % of the GEMM ceiling (goal >= 60 %)")
    if not eq:
        print("\nofficial step: not run (pass --official PATH to a facebookresearch/ijepa checkout, or set IJEPA_OFFICIAL)")
    ceil = r["gemm_ceiling_gflops"]
    print(f"\nGEMM ceiling (same threads, probed between the steps): "
          + ", ".join(f"{d} {g:.1f} GFLOP/s" for d, g in ceil.items())
          + (f"; device data-sheet peak {r['device_peak_tflops']:.0f} TFLOP/s" if r["device_peak_tflops"] else ""))
    dts = list(r["gemm_per_shape"])
    print("| GEMM | " + " | ".join(f"{d} GFLOP/s (median of probes)" for d in dts) + " |\n|---|" + "---|" * len(dts))
    for k in r["gemm_per_shape"][dts[0]]:
        print(f"| {k} | " + " | ".join(f"{r['gemm_per_shape'][d][k]:.1f}" for d in dts) + " |")
    if r["official_collator"]:
        o = r["official_collator"]
        print(f"\nofficial MaskCollator itself ({o['batches']} batches of {c['batch_size']}): context tokens {o['ctx_mean']:.1f} mean, "
              f"target tokens {o['tgt_mean']:.1f} mean (the 'official masks' columns re-draw by its rules)")
    if r.get("params_official"):
        print(f"official model: encoder {r['params_official'][0] / 1e6:.2f} M, predictor {r['params_official'][1] / 1e6:.2f} M params")
    print(f"\ncollator per batch (library): crop + masks {r['collate_ms']:.2f} ms, masks only {r['masks_ms']:.2f} ms"
          + (f" ({100 * r['collate_over_step']:.2f} % of a step)" if "collate_over_step" in r else "")
          + (f"; official-statistics masks {r['official_stat_masks_ms']:.2f} ms" if r["official_stat_masks_ms"] is not None else ""))
    mem = (f"peak RSS {r['peak_rss_mib']:.0f} MiB, +{r['rss_increase_during_steps_mib']:.0f} MiB during the steps"
           if r["device"] == "cpu" else "per-variant row above")
    print(f"memory: {r['memory_method']}: {mem}")


if __name__ == "__main__":
    main()
