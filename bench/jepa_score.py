#!/usr/bin/env python
"""JEPA-SCORE speed and work: images/s, GFLOP/s, the fraction of the machine's GEMM ceiling and peak memory of
each method against the per-image autograd Jacobian, and how well the sketch ranks like the exact score.

    python bench/jepa_score.py                  # ViT 192x6, 32x32 RGB, patch 4 (K=192, D=3072), 2 threads, CPU
    python bench/jepa_score.py --device cuda    # adds exact_batched (K cotangents batched per backward) and MFU
    python bench/jepa_score.py --quick          # a tiny model: checks that the script runs (seconds)

Every method runs in its own child process (same seed, same encoder weights, same inputs), so the peak
memory of one does not hide another's. The per-image route is `jepa_score_naive`
(torch.autograd.functional.jacobian per image: K backward passes of batch size 1, the paper's simple
listing). The FLOP floor of the exact score is one forward and K backward passes per image; we count
their FLOPs (torch.utils.flop_counter) and time one batched forward and one batched backward to say how
close each method comes.

Work and the ceiling: the parent process times a few GEMMs of the encoder's own shapes ((chunk*N) x D @ D x 3D,
D x 4D, 4D x D) and a big square one, with the same threads, right before and right after each method's child
process (bench/_common.py, `GemmProbe`); a method's achieved GFLOP/s (its FLOPs per image, counted with
torch.utils.flop_counter, times its images/s) over the ceiling (the median of all the probes of the run) is its
"of GEMM ceiling"; the probes around each method are printed too, to show how steady the machine was.

`exact_batched` is the exact score with the K cotangents batched: one backward pass carries
`--cotangent-batch` directions at once (torch.autograd.grad(..., is_grads_batched=True)), which fills a GPU that
one direction at a time leaves idle; it is a default method on CUDA only (on the 2-core CPU it measured slower
than one direction at a time). `sketch` is printed with its Spearman rank correlation with `exact` on the same
images. Record results in bench/RESULTS.md with the machine described.

The frontier (`--frontier`, on by default): estimators that cost fewer than K VJPs per image, each in its own
child process on the same images, with its Spearman rank correlation with `exact` and its speed-up over `exact`
(both from this run). An entry is `METHOD@P` (jepa_score's method and p) with an optional `+bf16` (the whole
scoring under torch.autocast("cpu"/"cuda", bfloat16)); `exact+bf16` is the exact score in bf16. `whitened`
scores against `--n-ref` reference images (drawn apart from the scored ones); its time includes their K VJPs
each, and the "reference amortised" column leaves them out (what a large set of images costs per image).

    python bench/jepa_score.py --profile        # torch.profiler over one chunk of the exact route: top ops by self CPU
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time

METHODS = ("naive", "exact", "gram64", "sketch", "exact_vmap", "exact_batched")
DEFAULT_CPU = ("naive", "exact", "gram64", "sketch", "exact_vmap")
DEFAULT_CUDA = ("naive", "exact", "exact_batched", "gram64", "sketch")
DEFAULT_FRONTIER = ("sketch@32,sketch@64,sketch@96,sketch@128,sketch@160,whitened@16,whitened@32,whitened@64,"
                    "exact+bf16,sketch@128+bf16,whitened@32+bf16,whitened@64+bf16")
QUICK_FRONTIER = "sketch@8,sketch@16,whitened@8,exact+bf16,whitened@8+bf16"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import GemmProbe, cuda_peak_tflops, gemm_shapes, load_line, machine_line


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
    ap.add_argument("--cotangent-batch", type=int, default=None,
                    help="directions per backward pass of exact_batched (default: 64 on CUDA, 16 on CPU)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", default=None, help=f"comma-separated subset of {METHODS} (default: {','.join(DEFAULT_CPU)}; "
                                                     f"on CUDA {','.join(DEFAULT_CUDA)})")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--quick", action="store_true", help="tiny model and few images: a smoke test of the script")
    ap.add_argument("--frontier", default=None,
                    help=f"comma-separated METHOD@P[+bf16] entries, or '' for none (default: {DEFAULT_FRONTIER})")
    ap.add_argument("--n-ref", type=int, default=4, help="reference images of the `whitened` frontier entries")
    ap.add_argument("--profile", action="store_true",
                    help="profile one chunk of the exact route (torch.profiler, top ops by self CPU time) and exit")
    ap.add_argument("--profile-directions", type=int, default=48,
                    help="backward passes in the profiled chunk (each one costs the same; K for the whole chunk)")
    a = ap.parse_args(argv)
    if a.quick:
        a.embed_dim, a.depth, a.num_heads, a.img_size, a.patch_size = 32, 1, 2, 16, 4
        a.n_images, a.n_naive, a.p = 4, 2, 8
    cuda = str(a.device).startswith("cuda")
    if cuda:
        import torch
        if not torch.cuda.is_available(): ap.error(f"--device {a.device}: CUDA is not available on this machine")
    if a.methods is None: a.methods = ",".join(DEFAULT_CUDA if cuda else DEFAULT_CPU)
    if a.cotangent_batch is None: a.cotangent_batch = 64 if cuda else 16
    if a.cotangent_batch < 1: ap.error(f"--cotangent-batch must be >= 1, got {a.cotangent_batch}")
    bad = [m for m in a.methods.split(",") if m not in METHODS]
    if bad: ap.error(f"unknown method(s) {bad}; choose from {list(METHODS)}")
    if a.p > a.embed_dim: ap.error(f"--p {a.p} must be <= --embed-dim {a.embed_dim}")
    if a.frontier is None: a.frontier = QUICK_FRONTIER if a.quick else DEFAULT_FRONTIER
    try:
        a.frontier_entries = [parse_entry(e) for e in a.frontier.split(",") if e]
    except ValueError as e:
        ap.error(str(e))
    for e in a.frontier_entries:
        if e[1] is not None and e[1] >= a.embed_dim: ap.error(f"frontier entry p={e[1]} must be < --embed-dim {a.embed_dim}")
    return a


def parse_entry(e: str):
    "'whitened@32+bf16' -> ('whitened', 32, True); 'exact+bf16' -> ('exact', None, True)."
    body, bf16 = (e[:-5], True) if e.endswith("+bf16") else (e, False)
    name, _, p = body.partition("@")
    if name not in ("exact", "gram64", "sketch", "whitened") or (name in ("sketch", "whitened")) != bool(p):
        raise ValueError(f"bad frontier entry {e!r}: METHOD@P for sketch/whitened, METHOD for exact/gram64, then +bf16 or not")
    return name, int(p) if p else None, bf16


def setup(a):
    import torch

    from jepa_nb.vit import PooledEncoder, ViTEncoder
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    enc = PooledEncoder(ViTEncoder(a.img_size, a.patch_size, a.in_chans, a.embed_dim, a.depth, a.num_heads)).eval().to(a.device)
    x = torch.randn(a.n_images, a.in_chans, a.img_size, a.img_size, generator=torch.Generator().manual_seed(1)).to(a.device)
    return torch, enc, x


def reference_images(a):
    "The `whitened` entries' reference images: --n-ref draws apart from the scored ones (seed 2)."
    import torch
    return torch.randn(a.n_ref, a.in_chans, a.img_size, a.img_size, generator=torch.Generator().manual_seed(2)).to(a.device)


def frontier_child(entry: str, a, q):
    "One frontier entry in this (fresh) process: {method, n, seconds, ref_seconds, scores} on the queue."
    try:
        torch, enc, x = setup(a)
        from jepa_nb.jepa_score import jepa_score, whitened_directions
        name, p, bf16 = parse_entry(entry)
        ac = torch.autocast(torch.device(a.device).type, dtype=torch.bfloat16, enabled=bf16)
        ref = reference_images(a) if name == "whitened" else None
        with ac:
            jepa_score(enc, x[:1], "sketch", p=min(8, a.embed_dim - 1), progress=False); _sync(torch, a.device)   # warm-up
            t0 = time.perf_counter()
            s = jepa_score(enc, x, name, p=p, chunk_size=a.chunk_size, reference=ref, progress=False); _sync(torch, a.device)
            dt = time.perf_counter() - t0
            t_ref = 0.0
            if ref is not None:                                                   # the reference's share, timed again alone
                t0 = time.perf_counter(); whitened_directions(enc, ref, p, chunk_size=a.chunk_size); _sync(torch, a.device)
                t_ref = time.perf_counter() - t0
        q.put(dict(method=entry, n=len(x), seconds=dt, ref_seconds=t_ref, scores=[float(v) for v in s]))
    except Exception as e:                                                        # report, do not hang the parent
        q.put(dict(method=entry, error=f"{type(e).__name__}: {e}"))


def profile_exact(a):
    ("torch.profiler over one chunk of the exact route (one forward, --profile-directions backward passes): top ops "
     "by self CPU time, with each op's GFLOP/s against the GEMM ceiling probed right before and after.")
    torch, enc, x = setup(a)
    from torch.profiler import ProfilerActivity, profile

    from jepa_nb.eval import as_pooled
    from jepa_nb.jepa_score import _rows_vjp, scoring_mode
    f, xb = as_pooled(enc), x[:a.chunk_size or 32]
    V = torch.eye(a.embed_dim, device=x.device)[:a.profile_directions]
    N = (a.img_size // a.patch_size) ** 2
    probe = GemmProbe(gemm_shapes(len(xb) * N, a.embed_dim, square=2048), a.device)
    before = probe.probe()
    with scoring_mode(f):
        _rows_vjp(f, xb[:2], V[:2])                                               # warm-up
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if str(a.device).startswith("cuda") else [])
        t0 = time.perf_counter()
        with profile(activities=acts, with_flops=True) as prof: _rows_vjp(f, xb, V)
        dt = time.perf_counter() - t0
    after = probe.probe()
    ceil = probe.ceiling()
    print(f"profile: one chunk of {len(xb)} images, 1 forward + {len(V)} backward passes, {dt:.2f} s under the profiler; "
          f"GEMM ceiling before / after {before:.0f} / {after:.0f} GFLOP/s")
    ka = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in ka)
    flops = sum(e.flops for e in ka)
    print(f"counted {flops / 1e9:.0f} GFLOP in {total / 1e6:.2f} s of self CPU time: {flops / total / 1e3:.1f} GFLOP/s "
          f"= {flops / total / 1e3 / ceil:.0%} of the ceiling ({ceil:.0f} GFLOP/s)")
    print("| op | self CPU ms | share of self CPU | calls | GFLOP/s | of ceiling |\n|---|---|---|---|---|---|")
    for e in sorted(ka, key=lambda e: -e.self_cpu_time_total)[:15]:
        g = e.flops / e.self_cpu_time_total / 1e3 if e.flops and e.self_cpu_time_total else 0.0
        print(f"| {e.key} | {e.self_cpu_time_total / 1e3:.0f} | {e.self_cpu_time_total / total:.1%} | {e.count} | "
              + (f"{g:.0f} | {g / ceil:.0%} |" if g else "- | - |"))


def _sync(torch, device):
    if str(device).startswith("cuda"): torch.cuda.synchronize()


def _peak_mib(torch, device) -> float:
    if str(device).startswith("cuda"): return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024          # KiB on Linux


def exact_batched(enc, x, chunk_size, cotangent_batch: int):
    "Exact JEPA-SCORE with the K cotangents batched: each backward pass carries `cotangent_batch` directions (is_grads_batched)."
    import torch

    from jepa_nb.eval import as_pooled
    from jepa_nb.jepa_score import DEFAULT_CHUNK, score_jacobians, scoring_mode
    f, c, out = as_pooled(enc), chunk_size or DEFAULT_CHUNK, []
    with scoring_mode(f):                                                       # eval, frozen weights, explicit (vmap-safe) attention
        for i in range(0, len(x), c):
            xi = x[i:i + c].detach().clone().requires_grad_(True)
            y = f(xi)                                                           # (b, K)
            b, K = y.shape
            eye, J = torch.eye(K, dtype=y.dtype, device=y.device), xi.new_empty(b, K, xi[0].numel())
            for r in range(0, K, cotangent_batch):
                V = eye[r:r + cotangent_batch, None, :].expand(-1, b, -1)       # (c, b, K): c directions for every image
                g, = torch.autograd.grad(y, xi, V, retain_graph=r + cotangent_batch < K, is_grads_batched=True)
                J[:, r:r + cotangent_batch] = g.flatten(2).transpose(0, 1)      # (b, c, D)
            out.append(score_jacobians(J))
    return torch.cat(out).cpu()


def child(method: str, a, q):
    "Run one method in this (fresh) process; put {method, n, seconds, peak_mib, base_mib, scores} on the queue."
    try:
        torch, enc, x = setup(a)
        from jepa_nb.jepa_score import (
            batched_jacobian,
            jepa_score,
            jepa_score_naive,
            score_jacobians,
        )
        def vmap_exact(xx): return score_jacobians(batched_jacobian(enc, xx, chunk_size=a.chunk_size, route="vmap"))
        fn = {"naive": lambda xx: jepa_score_naive(enc, xx),
              "exact": lambda xx: jepa_score(enc, xx, chunk_size=a.chunk_size),
              "gram64": lambda xx: jepa_score(enc, xx, "gram64", chunk_size=a.chunk_size),
              "sketch": lambda xx: jepa_score(enc, xx, "sketch", p=a.p, chunk_size=a.chunk_size),
              "exact_vmap": vmap_exact,
              "exact_batched": lambda xx: exact_batched(enc, xx, a.chunk_size, a.cotangent_batch)}[method]
        xs = x[:a.n_naive] if method == "naive" else x
        fn(xs[:1]); _sync(torch, a.device)                                      # warm-up
        if str(a.device).startswith("cuda"): torch.cuda.reset_peak_memory_stats()
        base = _peak_mib(torch, a.device)
        c0, t0 = time.process_time(), time.perf_counter()
        s = fn(xs); _sync(torch, a.device)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        q.put(dict(method=method, n=len(xs), seconds=dt, cpu_seconds=dc, peak_mib=_peak_mib(torch, a.device), base_mib=base,
                   scores=[float(v) for v in s]))
    except Exception as e:                                                        # report, do not hang the parent
        q.put(dict(method=method, error=f"{type(e).__name__}: {e}"))


def floor(a) -> dict:
    "FLOPs of one forward and one input-gradient backward per image (explicit attention: the counter sees its matmuls), and their batched wall times."
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


def spearman(u, v) -> float:
    "Spearman rank correlation of two score lists (no ties expected in float scores)."
    import torch
    ru, rv = (torch.as_tensor(w, dtype=torch.float64).argsort().argsort().double() for w in (u, v))
    ru, rv = ru - ru.mean(), rv - rv.mean()
    return float((ru @ rv) / (ru.norm() * rv.norm()))


def main(argv=None):
    a = parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    if a.profile:
        print("machine:", machine_line(a.device, a.threads), "|", load_line(), flush=True)
        return profile_exact(a)
    cuda = str(a.device).startswith("cuda")
    ctx = mp.get_context("spawn")
    print(f"JEPA-SCORE bench: ViT {a.embed_dim}x{a.depth} ({a.num_heads} heads), {a.in_chans}x{a.img_size}x{a.img_size}, "
          f"patch {a.patch_size}: K={a.embed_dim}, D={a.in_chans * a.img_size ** 2}; {a.n_images} images "
          f"(per-image route: {a.n_naive}), chunk_size={a.chunk_size}, sketch p={a.p}"
          + (f", cotangent batch {a.cotangent_batch}" if "exact_batched" in a.methods else ""))
    print("machine:", machine_line(a.device, a.threads), "|", load_line(), flush=True)
    N = (a.img_size // a.patch_size) ** 2
    probe = GemmProbe(gemm_shapes(min(a.n_images, a.chunk_size or 64) * N, a.embed_dim, square=8192 if cuda else 2048), a.device)
    res = {}
    for m in a.methods.split(","):
        before = probe.probe()
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(m, a, q)); p.start()
        r = q.get(); p.join()
        after = probe.probe()
        if "error" in r: print(f"  {m}: FAILED {r['error']}", flush=True); continue
        r["probes"] = (before, after)
        res[m] = r
        print(f"  {m:13s} {r['n'] / r['seconds']:9.3f} images/s  ({r['seconds']:.2f} s for {r['n']}; GEMM ceiling around it "
              f"{before:.0f} / {after:.0f} GFLOP/s)", flush=True)
    fl = floor(a)
    floor_s = fl["t_fwd"] + fl["K"] * fl["t_bwd"]
    ceiling = probe.ceiling()                                                   # the machine's: median of every probe of the run
    for r in res.values(): r["ceiling"] = ceiling
    peak_tf = cuda_peak_tflops(torch.cuda.get_device_name(), False) if cuda else None
    print(f"\nFLOP floor of the exact score: 1 forward + K={fl['K']} backward passes per image = "
          f"{fl['flops_fwd'] / 1e9:.3f} + {fl['K']} x {fl['flops_bwd'] / 1e9:.3f} GFLOP = {fl['flops_exact'] / 1e9:.1f} GFLOP/image")
    print(f"measured at batch {fl['B']}: forward {fl['t_fwd'] * 1e3:.2f} ms/image, one backward {fl['t_bwd'] * 1e3:.2f} ms/image "
          f"-> floor {floor_s:.3f} s/image ({1 / floor_s:.2f} images/s)")
    print(f"GEMM ceiling (fp32, {a.threads} threads, median of the probes around the methods): {ceiling:.1f} GFLOP/s"
          + (f"; data-sheet fp32 peak {peak_tf:.1f} TFLOP/s" if peak_tf else ""))
    print("| GEMM | GFLOP/s (median of probes) |\n|---|---|")
    for k, v in probe.per_shape().items(): print(f"| {k} | {v:.1f} |")
    print()
    base, exact = res.get("naive"), res.get("exact")
    hdr = ("| method | images/s | s/image | CPU s/image | vs per-image | GFLOP/image | GFLOP/s | of GEMM ceiling | of floor speed | "
           + ("MFU | " if peak_tf else "") + "peak MiB (+ over setup) | max abs diff vs per-image | Spearman vs exact |")
    print(hdr); print("|" + "---|" * (hdr.count("|") - 1))
    rows = []
    for m, r in res.items():
        ips = r["n"] / r["seconds"]
        ratio = ips / (base["n"] / base["seconds"]) if base else float("nan")
        n_cmp = min(len(r["scores"]), len(base["scores"])) if base else 0
        diff = max(abs(u - v) for u, v in zip(r["scores"][:n_cmp], base["scores"][:n_cmp])) if base and m != "sketch" else float("nan")
        rho = spearman(r["scores"], exact["scores"]) if exact and m != "exact" and len(r["scores"]) == len(exact["scores"]) else float("nan")
        flops = fl["flops_exact"] if m != "sketch" else fl["flops_fwd"] + a.p * fl["flops_bwd"]
        gfs = flops * ips / 1e9
        row = dict(method=m, images_per_s=ips, s_per_image=1 / ips, speedup_vs_per_image=ratio, gflop_per_image=flops / 1e9,
                   fraction_of_floor=floor_s * ips if m != "sketch" else float("nan"), gflops_per_s=gfs,
                   of_gemm_ceiling=gfs / r["ceiling"], ceiling_gflops=r["ceiling"], cpu_seconds=r["cpu_seconds"],
                   peak_mib=r["peak_mib"], peak_over_setup_mib=r["peak_mib"] - r["base_mib"], max_abs_diff=diff, spearman_vs_exact=rho)
        if peak_tf: row["mfu"] = gfs / (1e3 * peak_tf)
        rows.append(row)
        print(f"| {m} | {ips:.3f} | {1 / ips:.3f} | {r['cpu_seconds'] / r['n']:.3f} | {ratio:.2f}x | {flops / 1e9:.1f} | {gfs:.1f} | {row['of_gemm_ceiling']:.0%} | "
              f"{row['fraction_of_floor']:.0%} | " + (f"{row['mfu']:.1%} | " if peak_tf else "")
              + f"{r['peak_mib']:.0f} (+{row['peak_over_setup_mib']:.0f}) | {diff:.2e} | {rho:.3f} |")
    by = {r["method"]: r for r in rows}
    if "exact" in by:
        e = by["exact"]
        print(f"\nexact: {e['s_per_image']:.3f} s/image, {e['gflops_per_s']:.1f} GFLOP/s = {e['of_gemm_ceiling']:.0%} of the GEMM ceiling "
              f"(goal >= 85%)" + (f", {e['speedup_vs_per_image']:.2f}x the per-image route" if base else ""))
    if "sketch" in by and "exact" in by:
        sk = by["sketch"]
        print(f"sketch (p={a.p}): Spearman {sk['spearman_vs_exact']:.3f} with the exact score on the same {len(res['sketch']['scores'])} images, "
              f"at {sk['images_per_s'] / by['exact']['images_per_s']:.1f}x its speed")
    if "exact_batched" in by and "exact" in by:
        print(f"exact_batched ({a.cotangent_batch} cotangents per backward): {by['exact_batched']['images_per_s'] / by['exact']['images_per_s']:.2f}x exact")
    front = frontier(a, ctx, exact)
    if a.json:
        with open(a.json, "w") as f: json.dump(dict(config=vars(a), machine=machine_line(a.device, a.threads), floor=fl, gemm_ceiling_gflops=ceiling,
                                                    gemm_per_shape=probe.per_shape(), device_peak_fp32_tflops=peak_tf, rows=rows,
                                                    frontier=front), f, indent=2)
    return rows


def frontier(a, ctx, exact) -> list:
    "Run every frontier entry in its own process; print Spearman with `exact` and the speed-up over it (this run's)."
    if not a.frontier_entries: return []
    print(f"\nFrontier: estimators with fewer than K={a.embed_dim} VJPs per image (or the K VJPs in bf16), on the same "
          f"{a.n_images} images; whitened: {a.n_ref} reference images | {load_line()}", flush=True)
    out = []
    for e in a.frontier.split(","):
        if not e: continue
        q = ctx.Queue()
        pr = ctx.Process(target=frontier_child, args=(e, a, q)); pr.start()
        r = q.get(); pr.join()
        if "error" in r: print(f"  {e}: FAILED {r['error']}", flush=True); continue
        print(f"  {e:18s} {r['n'] / r['seconds']:9.3f} images/s  ({r['seconds']:.2f} s for {r['n']}"
              + (f", of which reference {r['ref_seconds']:.2f} s" if r["ref_seconds"] else "") + ")", flush=True)
        out.append(r)
    t_ex = exact["seconds"] / exact["n"] if exact else float("nan")
    print("\n| estimator | VJPs/image | s/image | speed-up vs exact | speed-up, reference amortised | Spearman vs exact |")
    print("|---|---|---|---|---|---|")
    if exact: print(f"| exact (fp32) | {a.embed_dim} | {t_ex:.3f} | 1.00x | 1.00x | 1.000 |")
    rows = []
    for r in out:
        name, p, bf16 = parse_entry(r["method"])
        t, t_am = r["seconds"] / r["n"], (r["seconds"] - r["ref_seconds"]) / r["n"]
        rho = spearman(r["scores"], exact["scores"]) if exact and len(r["scores"]) == len(exact["scores"]) else float("nan")
        rows.append(dict(entry=r["method"], method=name, p=p, bf16=bf16, s_per_image=t, s_per_image_amortised=t_am,
                         speedup=t_ex / t, speedup_amortised=t_ex / t_am, spearman_vs_exact=rho))
        print(f"| {r['method']} | {p or a.embed_dim} | {t:.3f} | {t_ex / t:.2f}x | {t_ex / t_am:.2f}x | {rho:.3f} |")
    ok = [r for r in rows if r["spearman_vs_exact"] >= 0.95]
    if ok:
        b = max(ok, key=lambda r: r["speedup"])
        print(f"\nfastest with Spearman >= 0.95: {b['entry']} at {b['speedup']:.2f}x exact "
              f"({b['speedup_amortised']:.2f}x reference amortised), Spearman {b['spearman_vs_exact']:.3f}")
    return rows


if __name__ == "__main__":
    main()
