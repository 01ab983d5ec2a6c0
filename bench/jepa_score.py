#!/usr/bin/env python
"""JEPA-SCORE speed: images/s and peak memory of each method against the per-image autograd Jacobian.

    python bench/jepa_score.py            # ViT 192x6, 32x32 RGB, patch 4 (K=192, D=3072), 2 threads, CPU
    python bench/jepa_score.py --quick    # a tiny model: checks that the script runs (seconds)

Every method runs in its own child process (same seed, same encoder weights, same inputs), so the peak
memory of one does not hide another's. The per-image route is `jepa_score_naive`
(torch.autograd.functional.jacobian per image: K backward passes of batch size 1, the paper's simple
listing). The FLOP floor of the exact score is one forward and K backward passes per image; we count
their FLOPs (torch.utils.flop_counter) and time one batched forward and one batched backward to say how
close each method comes. Record results in bench/RESULTS.md with the machine described.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time

METHODS = ("naive", "exact", "gram64", "sketch", "exact_vmap")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embed-dim", type=int, default=192, help="encoder width K")
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--num-heads", type=int, default=3)
    ap.add_argument("--img-size", type=int, default=32)
    ap.add_argument("--patch-size", type=int, default=4)
    ap.add_argument("--in-chans", type=int, default=3)
    ap.add_argument("--n-images", type=int, default=32, help="images scored by the batched methods")
    ap.add_argument("--n-naive", type=int, default=4, help="images scored by the per-image route (slow)")
    ap.add_argument("--chunk-size", type=int, default=None, help="images per batched Jacobian (jepa_score's chunk_size)")
    ap.add_argument("--p", type=int, default=32, help="sketch directions")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {METHODS}")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--quick", action="store_true", help="tiny model and few images: a smoke test of the script")
    a = ap.parse_args(argv)
    if a.quick:
        a.embed_dim, a.depth, a.num_heads, a.img_size, a.patch_size = 32, 1, 2, 16, 4
        a.n_images, a.n_naive, a.p = 4, 2, 8
    bad = [m for m in a.methods.split(",") if m not in METHODS]
    if bad: ap.error(f"unknown method(s) {bad}; choose from {list(METHODS)}")
    if a.p > a.embed_dim: ap.error(f"--p {a.p} must be <= --embed-dim {a.embed_dim}")
    return a


def setup(a):
    import torch
    from jepa_nb.vit import PooledEncoder, ViTEncoder
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    enc = PooledEncoder(ViTEncoder(a.img_size, a.patch_size, a.in_chans, a.embed_dim, a.depth, a.num_heads)).eval().to(a.device)
    x = torch.randn(a.n_images, a.in_chans, a.img_size, a.img_size, generator=torch.Generator().manual_seed(1)).to(a.device)
    return torch, enc, x


def _sync(torch, device):
    if str(device).startswith("cuda"): torch.cuda.synchronize()


def _peak_mib(torch, device) -> float:
    if str(device).startswith("cuda"): return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024          # KiB on Linux


def child(method: str, a, q):
    "Run one method in this (fresh) process; put {method, n, seconds, peak_mib, base_mib, scores} on the queue."
    try:
        torch, enc, x = setup(a)
        from jepa_nb.jepa_score import batched_jacobian, jepa_score, jepa_score_naive, score_jacobians
        def vmap_exact(xx): return score_jacobians(batched_jacobian(enc, xx, chunk_size=a.chunk_size, route="vmap"))
        fn = {"naive": lambda xx: jepa_score_naive(enc, xx),
              "exact": lambda xx: jepa_score(enc, xx, chunk_size=a.chunk_size),
              "gram64": lambda xx: jepa_score(enc, xx, "gram64", chunk_size=a.chunk_size),
              "sketch": lambda xx: jepa_score(enc, xx, "sketch", p=a.p, chunk_size=a.chunk_size),
              "exact_vmap": vmap_exact}[method]
        xs = x[:a.n_naive] if method == "naive" else x
        fn(xs[:1]); _sync(torch, a.device)                                      # warm-up
        if str(a.device).startswith("cuda"): torch.cuda.reset_peak_memory_stats()
        base = _peak_mib(torch, a.device)
        t0 = time.perf_counter(); s = fn(xs); _sync(torch, a.device); dt = time.perf_counter() - t0
        q.put(dict(method=method, n=len(xs), seconds=dt, peak_mib=_peak_mib(torch, a.device), base_mib=base,
                   scores=[float(v) for v in s]))
    except Exception as e:                                                        # report, do not hang the parent
        q.put(dict(method=method, error=f"{type(e).__name__}: {e}"))


def floor(a) -> dict:
    "FLOPs of one forward and one input-gradient backward per image, and their batched wall times."
    torch, enc, x = setup(a)
    from torch.utils.flop_counter import FlopCounterMode
    from jepa_nb.jepa_score import scoring_mode
    B = min(len(x), a.chunk_size or 64)
    with scoring_mode(enc):
        xi = x[:1].clone().requires_grad_(True)
        with FlopCounterMode(display=False) as fc: y = enc(xi)
        f_fwd = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc: torch.autograd.grad(y[:, 0].sum(), xi)
        f_bwd = fc.get_total_flops()
        xb = x[:B].clone().requires_grad_(True)
        t_f, t_b = [], []
        for _ in range(5):
            _sync(torch, a.device); t0 = time.perf_counter(); y = enc(xb); _sync(torch, a.device); t_f.append(time.perf_counter() - t0)
            t0 = time.perf_counter(); torch.autograd.grad(y[:, 0].sum(), xb); _sync(torch, a.device); t_b.append(time.perf_counter() - t0)
    K = a.embed_dim
    return dict(K=K, D=a.in_chans * a.img_size ** 2, B=B, flops_fwd=f_fwd, flops_bwd=f_bwd, flops_exact=f_fwd + K * f_bwd,
                t_fwd=statistics.median(t_f) / B, t_bwd=statistics.median(t_b) / B)


def machine(a) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f: cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration): pass
    import torch
    return (f"{cpu}, {os.cpu_count()} cores visible, torch {torch.__version__}, {a.threads} threads, device {a.device}"
            + (f" ({torch.cuda.get_device_name()})" if str(a.device).startswith("cuda") else ""))


def main(argv=None):
    a = parse_args(argv)
    ctx = mp.get_context("spawn")
    print(f"JEPA-SCORE bench: ViT {a.embed_dim}x{a.depth} ({a.num_heads} heads), {a.in_chans}x{a.img_size}x{a.img_size}, "
          f"patch {a.patch_size}: K={a.embed_dim}, D={a.in_chans * a.img_size ** 2}; {a.n_images} images "
          f"(per-image route: {a.n_naive}), chunk_size={a.chunk_size}, sketch p={a.p}")
    print("machine:", machine(a), flush=True)
    res = {}
    for m in a.methods.split(","):
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(m, a, q)); p.start()
        r = q.get(); p.join()
        if "error" in r: print(f"  {m}: FAILED {r['error']}", flush=True); continue
        res[m] = r
        print(f"  {m:10s} {r['n'] / r['seconds']:9.3f} images/s  ({r['seconds']:.2f} s for {r['n']})", flush=True)
    fl = floor(a)
    floor_s = fl["t_fwd"] + fl["K"] * fl["t_bwd"]
    print(f"\nFLOP floor of the exact score: 1 forward + K={fl['K']} backward passes per image = "
          f"{fl['flops_fwd'] / 1e9:.3f} + {fl['K']} x {fl['flops_bwd'] / 1e9:.3f} GFLOP = {fl['flops_exact'] / 1e9:.1f} GFLOP/image")
    print(f"measured at batch {fl['B']}: forward {fl['t_fwd'] * 1e3:.2f} ms/image, one backward {fl['t_bwd'] * 1e3:.2f} ms/image "
          f"-> floor {floor_s:.3f} s/image ({1 / floor_s:.2f} images/s)\n")
    base = res.get("naive")
    hdr = f"| method | images/s | s/image | vs per-image | of floor speed | GFLOP/s | peak MiB (+ over setup) | max abs diff vs per-image |"
    print(hdr); print("|" + "---|" * (hdr.count("|") - 1))
    rows = []
    for m, r in res.items():
        ips = r["n"] / r["seconds"]
        ratio = ips / (base["n"] / base["seconds"]) if base else float("nan")
        diff = max(abs(u - v) for u, v in zip(r["scores"], base["scores"])) if base and m not in ("sketch",) else float("nan")
        flops = fl["flops_exact"] if m != "sketch" else fl["flops_fwd"] + a.p * fl["flops_bwd"]
        row = dict(method=m, images_per_s=ips, s_per_image=1 / ips, speedup_vs_per_image=ratio, fraction_of_floor=floor_s * ips if m != "sketch" else float("nan"),
                   gflops_per_s=flops * ips / 1e9, peak_mib=r["peak_mib"], peak_over_setup_mib=r["peak_mib"] - r["base_mib"], max_abs_diff=diff)
        rows.append(row)
        print(f"| {m} | {ips:.3f} | {1 / ips:.3f} | {ratio:.2f}x | {row['fraction_of_floor']:.0%} | {row['gflops_per_s']:.1f} | "
              f"{r['peak_mib']:.0f} (+{row['peak_over_setup_mib']:.0f}) | {diff:.2e} |")
    if base and "exact" in res:
        sp = [r for r in rows if r["method"] == "exact"][0]["speedup_vs_per_image"]
        print(f"\nexact batched vs per-image: {sp:.2f}x (goal >= 3x on CPU); exact runs at "
              f"{[r for r in rows if r['method'] == 'exact'][0]['fraction_of_floor']:.0%} of the measured floor speed")
    if a.json:
        with open(a.json, "w") as f: json.dump(dict(config=vars(a), machine=machine(a), floor=fl, rows=rows), f, indent=2)
    return rows


if __name__ == "__main__":
    main()
