"""Shared parts of the benches: the machine line, FLOP counting, the measured GEMM ceiling and known device peaks.

Work, not just time: each bench counts the FLOPs of what it times (`torch.utils.flop_counter`) and measures,
in the same run and with the same threads, the GFLOP/s that large matrix products reach on this machine (the
*GEMM ceiling*); achieved GFLOP/s over that ceiling says how much of the machine a method uses.

FLOPs are counted on the **meta device** (shapes only, nothing computed): there
`F.scaled_dot_product_attention` decomposes into the matrix products it stands for, which the counter sees,
while the fused CPU kernel is invisible to it (it would count 0 FLOPs for attention). Only matrix products and
convolutions are counted (the counter's rules): element-wise work (softmax, GELU, LayerNorm, AdamW) is free
in these numbers, as in every MFU figure.
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# Dense peak tensor-core TFLOP/s (no sparsity) of known devices, from their vendors' data sheets: bf16 and the
# fp32 (non-tensor) rate. Only used on CUDA, for MFU; a device not listed gets MFU against the measured ceiling only.
CUDA_PEAK_TFLOPS = {            # name fragment (lower case): (bf16, fp32)
    "h200": (989.0, 67.0),      # H200 SXM (same SMs and clocks as H100 SXM)
    "h100 sxm": (989.0, 67.0),
    "h100 pcie": (756.0, 51.0),
    "h100": (989.0, 67.0),      # unknown form factor: assume SXM
    "a100": (312.0, 19.5),
    "l40s": (362.0, 91.6),
    "l4": (121.0, 30.3),
    "a10g": (70.0, 31.2),       # AWS A10G (the data sheet's 125 dense bf16 is the A10 PCIe at full clocks)
    "a10": (125.0, 31.2),
    "rtx 4090": (165.2, 82.6),  # bf16 with fp32 accumulate
    "rtx 3090": (71.0, 35.6),
    "t4": (65.0, 8.1),          # fp16 (T4 has no bf16 tensor cores)
    "v100": (125.0, 15.7),      # fp16
}


def cuda_peak_tflops(name: str, bf16: bool) -> float | None:
    "The data-sheet peak of a CUDA device by name (longest matching fragment first), or None when unknown."
    n = name.lower()
    for frag in sorted(CUDA_PEAK_TFLOPS, key=len, reverse=True):
        if frag in n: return CUDA_PEAK_TFLOPS[frag][0 if bf16 else 1]
    return None


def sync(device) -> None:
    if torch.device(device).type == "cuda": torch.cuda.synchronize()


def maxrss_mib() -> float:
    "Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 2**10


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine_line(device, threads: int) -> str:
    dev = torch.device(device)
    gpu = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
    return (f"{cpu_name()}, {os.cpu_count()} cores visible, torch {torch.__version__}, {threads} torch threads, "
            f"device {dev}{gpu}")


def load_line() -> str:
    "The 1-minute load average against the cores: a busy machine makes every number here slower and noisier."
    try:
        l1 = os.getloadavg()[0]
        return f"load average {l1:.2f} on {os.cpu_count()} cores" + ("  (BUSY MACHINE: numbers are not a clean measurement)"
                                                                   if l1 > 0.5 else "")
    except OSError:
        return "load average unknown"


def count_flops(fn) -> int:
    "FLOPs (matrix products and convolutions, forward and backward) that `fn()` runs, as counted by torch.utils.flop_counter."
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc: fn()
    return fc.get_total_flops()


# --- the GEMM ceiling ------------------------------------------------------------------------------------------
def gemm_shapes(rows: int, width: int, mlp_ratio: float = 4.0, square: int = 2048) -> dict[str, tuple[int, int, int]]:
    "Representative fp32 GEMMs (m, k, n) of a ViT block of `width` over `rows` tokens, plus one big square product."
    h = int(width * mlp_ratio)
    return {f"qkv {rows}x{width}@{width}x{3 * width}": (rows, width, 3 * width),
            f"fc1 {rows}x{width}@{width}x{h}": (rows, width, h),
            f"fc2 {rows}x{h}@{h}x{width}": (rows, h, width),
            f"square {square}^3": (square, square, square)}


class GemmProbe:
    """Achieved GFLOP/s of a fixed set of GEMMs, measured whenever `probe()` is called (between the timed work, so the
    ceiling sees the same machine state as the work); `ceiling()` is the median over probes of each probe's best shape."""
    def __init__(self, shapes: dict[str, tuple[int, int, int]], device="cpu", dtype=torch.float32, reps: int = 2):
        self.device, self.dtype, self.reps = torch.device(device), dtype, reps
        g = torch.Generator().manual_seed(0)
        self.ops = {name: (torch.randn(m, k, generator=g).to(self.device, dtype), torch.randn(n, k, generator=g).to(self.device, dtype))
                    for name, (m, k, n) in shapes.items()}                    # F.linear(a, w) = a @ w.T, as nn.Linear runs it
        self.flops = {name: 2 * m * k * n for name, (m, k, n) in shapes.items()}
        self.rounds: list[dict[str, float]] = []
        self.probe()                                                          # warm-up (allocations, kernel selection), discarded
        self.rounds.clear()

    def probe(self) -> float:
        "Time each GEMM (best of `reps`); record GFLOP/s per shape and return this round's best."
        out = {}
        with torch.no_grad():
            for name, (a, w) in self.ops.items():
                best = float("inf")
                for _ in range(self.reps):
                    sync(self.device); t0 = time.perf_counter(); F.linear(a, w); sync(self.device)
                    best = min(best, time.perf_counter() - t0)
                out[name] = self.flops[name] / best / 1e9
        self.rounds.append(out)
        return max(out.values())

    def round_ceilings(self) -> list[float]: return [max(r.values()) for r in self.rounds]

    def ceiling(self) -> float: return statistics.median(self.round_ceilings())

    def per_shape(self) -> dict[str, float]: return {k: statistics.median(r[k] for r in self.rounds) for k in self.rounds[0]}
