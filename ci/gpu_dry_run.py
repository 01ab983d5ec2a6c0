"""The GPU tier, dry: what `ci/gpu.sh` will do on a lent GPU (no network, ~15 minutes), checked on this CPU first.

    python ci/gpu_dry_run.py [-p KEY=VALUE ...] [--only RUN,...] [--params-dir DIR] [--mfu 0.4] [--budget-min M]
                             [--quick] [--no-ddp] [--preflight] [--network off|auto]

For every run of `ci/gpu.sh` (10_pretrain and 10_pretrain_lejepa, 11, 12, 13, 15; and 14, which gpu.sh leaves out):
 1. its gpu tier resolved and checked by the runner itself (`resolve_params`, the code behind `jepa-nb params EXP
    --tier gpu`), `-p` values applied where declared as `ci/reproduce.py` does, and the data parameters checked;
 2. its data, offline: embedded / procedural sets and local files are there; a hub set (cifar10, stl10, imagenette)
    only from a copy already in the Hugging Face cache (settings.ini cache_dir), never from a download;
 3. every pretraining configuration it trains, built by the notebook's own code (its import, parameters and config
    cells, executed here with `new_run` stubbed and `get_device` answering as on the GPU machine), deduplicated over
    seeds; for each: the model at the gpu shapes, its parameters, training memory at the gpu batch (fp32 weights,
    grads and AdamW state; activations = the bytes autograd saves for backward, measured under bf16 autocast at
    batches b and 2b and extrapolated linearly (on the CPU attention runs in fp32 under autocast, lesson 03, so its
    saved inputs count twice what CUDA keeps: the estimate errs high), +25 % for workspaces, +1 GiB CUDA context) against the H200's
    139 GiB, FLOPs per step (torch FlopCounterMode on batch b, attention through its explicit matmuls, scaled to
    the batch) and the expected time per step and per run at a stated MFU of the H200's dense bf16 peak, never
    below a launch floor of 10 us per aten op dispatched in a step (eager small models are launch-bound), plus
    the time this CPU takes to make one gpu batch (num_workers 0: batches are made between steps);
 4. the code paths of a CUDA run besides the device calls, on CPU: the method's autocast decision for a CUDA
    tensor (a fake one: bf16, enabled), 3 steps of `run_step` with bf16 autocast on, a fused AdamW built from
    `param_groups` as `start_loop` builds it for CUDA, batches from the method's loader built with
    pin_memory=True (pinning itself needs CUDA: reported), compile off; and DDP: one configuration for 2 steps
    in 2 gloo processes through torchrun (`jepa_nb.distributed.launch`);
 5. a table and a verdict; exit 1 on any problem.
`--quick`: only the smallest configuration of each method (the test's mode). `--budget-min M`: a problem when
ci/gpu.sh's pretraining is expected to take longer than M minutes. `--preflight`: steps 1-2 only, with the hub
counted when reachable from this machine (what `ci/gpu.sh` runs before it starts: it refuses to spend device time
on a download that cannot happen).
"""
import argparse
import atexit
import contextlib
import functools
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "ci"), str(ROOT / "bench")]
import reproduce  # noqa: E402  (its PRETRAIN_RUNS, CHECKPOINT_EXPERIMENTS, OPTIONAL: the runs of ci/gpu.sh)
from _common import cuda_peak_tflops  # noqa: E402  (the data-sheet peaks the benchmarks use)
from jepa_nb.runner.params import ParamError, parse_params  # noqa: E402
from jepa_nb.runner.checks import resolve_params  # noqa: E402

GIB = 2 ** 30
H200_GIB = 139.0                 # the lent H200's memory as torch reports it
H200_BF16_PEAK = cuda_peak_tflops("h200", bf16=True) * 1e12   # dense bf16 FLOP/s (data sheet, no sparsity)
LAUNCH_S = 10e-6                 # host time per aten op dispatched in eager mode (launch floor of a step)
ACT_HEADROOM = 1.25              # activations x this: allocator fragmentation, cuBLAS / attention workspaces
CUDA_CONTEXT_GIB = 1.0           # CUDA context and caching-allocator slack
SMALL_BATCH = 4                  # batch b of the CPU steps (and 2b)
GPU_SH_RUNS = {*reproduce.PRETRAIN_RUNS, *reproduce.CHECKPOINT_EXPERIMENTS, "13_ablate_masking", "15_compare"}
# hub sets: image shape as the loader returns it (imagenette: its default image_size) and train-split size
HUB_SHAPES = {"cifar10": ((3, 32, 32), 50_000), "stl10": ((3, 96, 96), 5_000), "imagenette": ((3, 128, 128), 9_469)}
REMEDY = ("-p dataset=shapes (procedural, 3x32x32 like CIFAR-10, 2,000 train images) or -p dataset=mnist5k "
          "(embedded, 1x28x28 resized to img_size, 4,000), e.g. ci/gpu.sh runs/reproduce-gpu -p dataset=shapes; or "
          "pre-fill the Hugging Face cache on a machine online (python -c \"from jepa_nb.data import load_data; "
          "load_data('{name}', 'train'); load_data('{name}', 'test')\") and copy settings.ini's cache_dir ({cache}) "
          "to the GPU machine")


def runs() -> dict[str, tuple[str, dict]]:
    "Run folder -> (experiment stem, its fixed parameters), in gpu.sh's order, 14 before 15."
    out = {name: ("10_pretrain", parse_params(extra)) for name, extra in reproduce.PRETRAIN_RUNS.items()}
    # 11 and 12 take the checkpoints 10 will write: empty stand-ins, so that the runner's own check that a path exists
    # passes here (they are never read: the dry run profiles the pretraining configurations themselves)
    stand_in = Path(tempfile.mkdtemp(prefix="gpu-dry-run-"))
    atexit.register(shutil.rmtree, stand_in, True)
    for name in reproduce.PRETRAIN_RUNS:
        (stand_in / name).mkdir(); (stand_in / name / "checkpoint.pt").touch()
    ckpt = parse_params(reproduce.checkpoint_params(stand_in)[1::2])
    out |= {stem: (stem, dict(ckpt)) for stem in reproduce.CHECKPOINT_EXPERIMENTS}
    return out | {stem: (stem, {}) for stem in reproduce.OPTIONAL}


# --- 2. data, offline ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def data_status(name: str, network: bool) -> tuple[bool, str]:
    "(available, how) for dataset `name` on a machine without network (with `network`: the hub too, if reachable)."
    from jepa_nb.core import hub_offline_mode, hub_reachable, load_settings
    from jepa_nb.data import HUB_DATASETS, LOCAL_DATASETS
    from jepa_nb.dataparams import FILE_KINDS, count_images
    if name in LOCAL_DATASETS: return True, "embedded/procedural"
    kind, _, raw = name.partition(":")
    if kind in FILE_KINDS:
        n = count_images(name)
        return (True, f"local files ({n} images)") if n else (False, f"{name}: no images found there")
    if name not in HUB_DATASETS: return True, "made by the notebook"      # e.g. experiment 12's 'noise'
    spec, cache = HUB_DATASETS[name], load_settings().cache_dir
    import datasets
    try:
        with hub_offline_mode(True), contextlib.redirect_stderr(io.StringIO()):
            b = datasets.load_dataset_builder(spec["hub_id"], spec["config"], cache_dir=str(cache))
        if (Path(b.cache_dir) / "dataset_info.json").is_file(): return True, f"HF cache ({b.cache_dir})"
    except Exception:
        pass
    if network and hub_reachable(): return True, "hub reachable (download)"
    where = "and the hub is not reachable from here" if network else "the lent GPU machine has no network"
    return False, (f"{name} needs the Hugging Face hub ({spec['hub_id']}) and no copy is in the cache {cache}; "
                   f"{where}. Remedy: " + REMEDY.format(name=name, cache=cache))


def datasets_of(run: str, final: dict, all_final: dict) -> list[str]:
    "The datasets a run reads: its `dataset`; 11 and 12: the pretraining run's (and 12's OOD sets)."
    from jepa_nb.core import load_settings
    if "dataset" in final and final["dataset"] and run not in reproduce.CHECKPOINT_EXPERIMENTS:
        return [final["dataset"]]
    first = all_final.get(next(iter(reproduce.PRETRAIN_RUNS)), {})
    ood = [s for s in final.get("ood_sets", []) if s not in ("noise", "digits_stretched")]
    return list(dict.fromkeys([first.get("dataset") or load_settings().default_dataset, *ood]))


# --- 3. configurations, built by the notebook's own cells ----------------------------------------------------
def notebook_configs(stem: str, inject: dict) -> dict:
    "label -> PretrainConfig: the notebook's import, parameters and config cells run with the runner's values."
    nb = json.loads((ROOT / "nbs" / f"{stem}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    i = next(k for k, c in enumerate(code) if "parameters" in c["metadata"].get("tags", []))
    src = lambda c: "".join(c["source"])
    ns = {"__name__": "__gpu_dry_run__"}
    with tempfile.TemporaryDirectory(prefix="gpu-dry-nb-") as tmp:
        return _run_config_cell(ns, code, i, src, tmp, inject)


def _run_config_cell(ns: dict, code: list, i: int, src, tmp: str, inject: dict) -> dict:
    "The import cells, the parameters cell, the injected values and the config cell of a notebook, in `ns`."
    import torch

    class _Run:                                            # new_run's stand-in: nothing is written
        path = Path(tmp)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in code[:i]: exec(src(c), ns)                # imports; `_before` for cell_params
        exec(src(code[i]), ns)                             # the defaults ...
        ns.update(inject, run_dir=tmp)                     # ... and papermill's injected cell
        ns["new_run"] = lambda *a, **k: _Run()
        ns["get_device"] = lambda d="auto": torch.device("cuda" if str(d) == "auto" else d)   # as on the GPU
        exec(src(code[i + 1]), ns)                         # the cell that builds the configs
    if "configs" in ns: return {(k if isinstance(k, str) else k[0], k[1] if isinstance(k, tuple) else 0): v
                                for k, v in ns["configs"].items()}
    return {("", ns["cfg"].seed): ns["cfg"]}


def unique_configs(configs: dict) -> dict[str, tuple]:
    "label -> (config of the first seed, seeds): configurations that differ only in their seed are one."
    out = {}
    for (label, seed), cfg in configs.items():
        key = label or cfg.method
        out.setdefault(key, (cfg, []))[1].append(seed)
    return out


# --- 3-4. one configuration: model, memory, FLOPs, CPU steps -------------------------------------------------
class _OpCount:
    "Counts the aten ops dispatched (the kernels an eager CUDA step would launch, about)."
    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        class Mode(TorchDispatchMode):
            n = 0
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                Mode.n += 1
                return func(*args, **(kwargs or {}))
        self.mode = Mode()

    def __enter__(self): self.mode.__enter__(); return self
    def __exit__(self, *a): self.mode.__exit__(*a)
    @property
    def n(self) -> int: return type(self.mode).n


@contextlib.contextmanager
def saved_bytes(params):
    "Yields a dict whose 'bytes' is the size of the distinct tensors autograd saves for backward (parameters excluded)."
    import torch
    skip, seen, out = {p.untyped_storage().data_ptr() for p in params}, set(), {"bytes": 0}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in skip and s.data_ptr() not in seen:
            seen.add(s.data_ptr()); out["bytes"] += s.nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield out


def stand_in_data(cfg, n: int):
    "ImageData for the CPU steps: the dataset itself when it is local, else random pixels of the hub set's shape."
    import torch
    from jepa_nb.data import ImageData, LOCAL_DATASETS, load_data
    from jepa_nb.dataparams import load_options
    if cfg.dataset in LOCAL_DATASETS or cfg.dataset.partition(":")[0] in ("folder", "parquet"):
        opts = load_options(cfg.dataset, cfg.image_mode, cfg.image_size)
        return load_data(cfg.dataset, "train", seed=cfg.seed, **opts).head(n)
    shape = HUB_SHAPES[cfg.dataset][0]
    if cfg.image_size: shape = (shape[0], cfg.image_size, cfg.image_size)
    g = torch.Generator().manual_seed(0)
    return ImageData(torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8), torch.arange(n) % 10,
                     [str(i) for i in range(10)], f"random {cfg.dataset}-shaped")


def data_full(cfg, data):
    "At least one gpu batch of images: `data` repeated (the loader's cost per batch does not depend on which)."
    from jepa_nb.data import ImageData
    k = -(-cfg.batch_size // len(data))
    return ImageData(data.images.repeat(k, 1, 1, 1), data.labels.repeat(k), data.classes, data.name)


def train_images(cfg) -> int:
    "Images per epoch of the gpu run: n_train, else the train split's size."
    from jepa_nb.dataparams import count_images
    n = count_images(cfg.dataset) or HUB_SHAPES.get(cfg.dataset, (None, 0))[1]
    return min(n, cfg.n_train) if cfg.n_train else n


def profile(cfg, nproc: int = 1) -> dict:
    "Build `cfg` at its gpu shapes, count, estimate, and take 3 CPU steps down a CUDA run's paths (batches b, b, 2b)."
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode
    from jepa_nb.masks import steps_per_epoch
    from jepa_nb.optim import param_groups
    from jepa_nb.methods import check_recipe, make_loader
    from jepa_nb.train import run_step, start_loop
    from jepa_nb.transforms import dataset_stats, make_transform
    from jepa_nb.vit import explicit_attention
    from jepa_nb.methods import build_model
    check_recipe(cfg)                                                   # the gpu config's masks fit its grid
    b, out = SMALL_BATCH, {}
    data = stand_in_data(cfg, 8 * b)
    with torch.device("meta"): meta = build_model(cfg, data.images.shape[1])   # sizes first, nothing allocated
    n_all = sum(p.numel() for p in meta.parameters())
    n_train = sum(p.numel() for p in meta.parameters() if p.requires_grad)
    static = (4 * n_all + 12 * n_train) / GIB + CUDA_CONTEXT_GIB     # fp32 weights (EMA target too), grads, AdamW m, v
    out.update(params_m=n_all / 1e6, trainable_m=n_train / 1e6, mem_gib=static)
    if static > H200_GIB: return out                                    # too big to build here, and there
    small = cfg.replace(batch_size=b, device="cpu", compile=False, num_workers=0, log_every=1)
    loop = start_loop(small, data)
    model = loop.model
    asked, real = [], torch.autocast                                    # the library's decision for a CUDA tensor:
    torch.autocast = lambda *a, **k: asked.append((a, k)) or contextlib.nullcontext()   # what it asks torch for
    try:
        with FakeTensorMode(): model.autocast(torch.empty(1, device="cuda"))
    finally: torch.autocast = real
    got = (asked[0][0][0], asked[0][1].get("dtype"), asked[0][1].get("enabled")) if asked else None
    if got != ("cuda", torch.bfloat16, cfg.bf16):
        raise AssertionError(f"the method's autocast for a CUDA tensor asks for {got} (device, dtype, enabled), "
                             f"expected ('cuda', torch.bfloat16, {cfg.bf16}) as bf16={cfg.bf16} says")
    model.autocast = lambda x: torch.autocast("cpu", dtype=torch.bfloat16, enabled=model.bf16)   # CUDA's, on CPU
    loop.opt = torch.optim.AdamW(param_groups(model), lr=cfg.lr, betas=(0.9, 0.999), fused=True)  # start_loop on CUDA
    mean, std = dataset_stats(data)
    tf = make_transform(True, cfg.img_size, mean, std, crop_scale=cfg.crop_scale)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        batches = [next(iter(make_loader(small.replace(batch_size=n), data, tf, s, 1, pin_memory=True)))
                   for s, n in ((0, b), (1, b), (2, 2 * b))]
    t = time.perf_counter()                                            # one batch at the gpu batch size, this CPU
    next(iter(make_loader(cfg.replace(device="cpu", compile=False), data_full(cfg, data), tf, 0, 1)))
    out["loader_ms"] = 1e3 * (time.perf_counter() - t)
    pinned = batches[0]["images"].is_pinned()
    out["pin"] = "pinned" if pinned else ("not pinned here (no CUDA)" if any("pin_memory" in str(x.message) for x in w)
                                          else "NOT pinned")
    params = list(model.parameters())
    with FlopCounterMode(display=False) as fc, explicit_attention(model):
        run_step(loop, batches[0])
    with saved_bytes(params) as a1, _OpCount() as ops:
        run_step(loop, batches[1])
    with saved_bytes(params) as a2:
        rec = run_step(loop, batches[2])
    if not math.isfinite(rec["loss"]): raise FloatingPointError(f"loss {rec['loss']} in the CPU steps")
    per_img = (a2["bytes"] - a1["bytes"]) / b
    if per_img <= 0: per_img = a2["bytes"] / (2 * b)                   # masks shrank the bigger batch: proportional
    fixed = max(a1["bytes"] - per_img * b, 0)
    B = cfg.batch_size // nproc                                         # per process
    act = fixed + per_img * B
    mem = static + ACT_HEADROOM * act / GIB
    flops = fc.get_total_flops() * cfg.batch_size / b
    steps = cfg.epochs * steps_per_epoch(train_images(cfg), cfg.batch_size)
    return dict(out, act_gib=act / GIB, mem_gib=mem, gflop=flops / 1e9, ops=ops.n, steps=steps, cpu_loss=rec["loss"])


def timing(p: dict, mfu: float, nproc: int, seeds: int, workers: int = 0) -> dict:
    ("Seconds per step (FLOPs at `mfu`, never below the launch floor, plus the batch made on this CPU unless "
     "loader workers overlap it) and per run, for every seed of it.")
    compute, launch, load = p["gflop"] * 1e9 / (mfu * H200_BF16_PEAK * nproc), p["ops"] * LAUNCH_S, p["loader_ms"] / 1e3
    gpu = max(compute, launch)
    step = gpu + load if workers == 0 else max(gpu, load / workers)    # num_workers 0: batches are made between steps
    bound = "loader" if load >= gpu else "flops" if compute >= launch else "launch"
    return dict(step_ms=1e3 * step, bound=f"{bound}-bound; CPU batch {p['loader_ms']:.0f} ms",
                run_min=step * p["steps"] * seeds / 60)


# --- DDP: 2 gloo processes, 2 steps ---------------------------------------------------------------------------
def ddp_check(cfg) -> str:
    "2 steps of `cfg` (tiny batch, CPU, its data or mnist5k offline) in 2 gloo processes through torchrun."
    from jepa_nb.distributed import launch
    d = cfg.to_dict() | dict(device="cpu", batch_size=4, n_train=8, epochs=1, warmup_epochs=0.0, compile=False,
                             log_every=1, ckpt_every=0, monitor_every=0)
    if not data_status(cfg.dataset, False)[0]: d["dataset"] = "mnist5k"
    with tempfile.TemporaryDirectory(prefix="gpu-dry-ddp-") as tmp:
        (Path(tmp) / "params.json").write_text(json.dumps(d))
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            res = launch(2, Path(tmp) / "run", config=Path(tmp) / "params.json", timeout_s=240,
                         env={"OMP_NUM_THREADS": "1"})
        if res.steps != 2: raise AssertionError(f"DDP run reached step {res.steps}, expected 2")
        if "DistributedDataParallel" not in buf.getvalue():
            raise AssertionError("the 2-process run did not report a DistributedDataParallel wrapper")
    return f"{d['method']} {d['embed_dim']}x{d['depth']}, 2 gloo processes, 2 steps, loss {res.history[-1]['loss']:.4f}"


# --- the report ---------------------------------------------------------------------------------------------
def fmt_min(m: float) -> str:
    return f"{m:.1f} min" if m < 90 else f"{m / 60:.1f} h"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                    help="as for ci/gpu.sh: a parameter of the pretraining runs and 13-15, where declared")
    ap.add_argument("--only", default="", help="comma-separated run names (default: all)")
    ap.add_argument("--params-dir", type=Path, default=None, help="tier files' folder (default nbs/params)")
    ap.add_argument("--mfu", type=float, default=0.4,
                    help="assumed fraction of the H200's dense bf16 peak (989 TFLOP/s)")
    ap.add_argument("--no-ddp", action="store_true", help="skip the 2-process DDP check")
    ap.add_argument("--budget-min", type=float, default=0,
                    help="a problem when ci/gpu.sh's pretraining is expected to take longer (minutes; 0: no limit)")
    ap.add_argument("--quick", action="store_true", help="profile the smallest configuration of each method only")
    ap.add_argument("--network", choices=["off", "auto"], default=None,
                    help="off: hub sets count only from the cache (the lent GPU machine; default); auto: also when "
                         "the hub is reachable from here (default with --preflight)")
    ap.add_argument("--preflight", action="store_true",
                    help="parameters and data only, the hub counted when reachable from here (ci/gpu.sh's check)")
    a = ap.parse_args(argv)
    t0 = time.time()
    targets = ["10_pretrain", *reproduce.OPTIONAL]
    stray = [p for p in a.param if not any(reproduce.declared(t, [p]) for t in targets)]
    if stray: ap.error(f"no experiment of ci/gpu.sh declares {stray} (`jepa-nb params <experiment>` lists them)")
    user = parse_params(a.param)
    todo = runs()
    network = (a.network or ("auto" if a.preflight else "off")) == "auto"
    if a.only:
        unknown = [r for r in a.only.split(",") if r not in todo]
        if unknown: ap.error(f"--only names unknown runs {unknown}; choose from {list(todo)}")
        todo = {r: todo[r] for r in a.only.split(",")}
    problems, plan, finals, ddp_cfg, missing = [], [], {}, None, {}      # plan: rows, and jobs that profile a config
    for run, (stem, fixed) in todo.items():
        nb = ROOT / "nbs" / f"{stem}.ipynb"
        mine = {} if run in reproduce.CHECKPOINT_EXPERIMENTS else {
            k: v for k, v in user.items() if reproduce.declared(stem, [f"{k}=0"])}
        try:
            final, _, inject = resolve_params(nb, "gpu", {**fixed, **mine}, params_dir=a.params_dir)
            if "dataset" in final and run not in reproduce.CHECKPOINT_EXPERIMENTS:
                from jepa_nb.dataparams import check_data_params
                check_data_params(final)
        except Exception as e:
            problems.append(f"{run}: gpu tier: {type(e).__name__}: {e}".split("\nValid parameters")[0])
            plan.append(dict(run=run, config="(parameters)", ok="FAIL"))
            continue
        finals[run] = final
        data = {d: data_status(d, network) for d in datasets_of(run, final, finals)}
        for d, (ok, why) in data.items():
            if not ok: missing.setdefault(why, []).append(run)
        data_col = ", ".join(f"{d} {'yes' if ok else 'NO'}" for d, (ok, _) in data.items())
        if a.preflight or stem not in ("10_pretrain", *reproduce.OPTIONAL):
            plan.append(dict(run=run, config="(no pretraining)" if not a.preflight else "", data=data_col, ok="-"))
            continue
        try: configs = unique_configs(notebook_configs(stem, inject))
        except Exception as e:
            problems.append(f"{run}: building its configs: {type(e).__name__}: {e}")
            plan.append(dict(run=run, config="(configs)", data=data_col, ok="FAIL"))
            continue
        plan += [(run, label, cfg, seeds, final.get("nproc", 1), data_col) for label, (cfg, seeds) in configs.items()]
    if a.quick:                                            # the smallest configuration of each method, for the test
        jobs = [j for j in plan if isinstance(j, tuple)]
        size = lambda j: j[2].embed_dim ** 2 * j[2].depth
        keep = {id(min((j for j in jobs if j[2].method == m), key=size)) for m in {j[2].method for j in jobs}}
        kept_runs, quick = {j[0] for j in jobs if id(j) in keep}, []
        for j in plan:
            if not isinstance(j, tuple) or id(j) in keep: quick.append(j)
            elif j[0] not in kept_runs and not any(isinstance(q, dict) and q["run"] == j[0] for q in quick):
                quick.append(dict(run=j[0], config="(--quick: its methods profiled elsewhere)", data=j[5], ok="-"))
        plan = quick
    rows = []
    for job in plan:
        if isinstance(job, dict):
            rows.append(job)
            continue
        run, label, cfg, seeds, nproc, data_col = job
        row = dict(run=run, config=f"{label} x{len(seeds)}" if len(seeds) > 1 else label, data=data_col)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                p = profile(cfg, nproc)
            row.update(p, **(timing(p, a.mfu, nproc, len(seeds), cfg.num_workers) if "gflop" in p else {}), ok="ok")
            if p["mem_gib"] > H200_GIB and "gflop" not in p:
                problems.append(f"{run} / {label}: its weights and AdamW state alone need ~{p['mem_gib']:.0f} GiB "
                                f"({p['params_m']:.0f} M parameters), more than the H200's {H200_GIB:.0f} GiB; "
                                f"use a smaller model (embed_dim / depth)")
                row["ok"] = "OOM"
            elif p["mem_gib"] > H200_GIB:
                problems.append(f"{run} / {label}: needs ~{p['mem_gib']:.0f} GiB at batch_size {cfg.batch_size}, "
                                f"more than the H200's {H200_GIB:.0f} GiB; lower batch_size (-p batch_size=...) "
                                f"or the model (embed_dim / depth)")
                row["ok"] = "OOM"
            if run in GPU_SH_RUNS and row["ok"] == "ok" and (ddp_cfg is None or p["params_m"] < ddp_cfg[1]):
                ddp_cfg = (cfg, p["params_m"])
        except Exception as e:
            problems.append(f"{run} / {label}: {type(e).__name__}: {e}")
            row["ok"] = "FAIL"
        rows.append(row)
    gpu_sh = sum(r.get("run_min", 0) for r in rows if r["run"] in GPU_SH_RUNS)
    if a.budget_min and gpu_sh > a.budget_min:
        problems.append(f"ci/gpu.sh's pretraining is expected to take ~{fmt_min(gpu_sh)}, more than --budget-min "
                        f"{a.budget_min:g}; lower epochs (-p epochs=...) or run fewer experiments")
    problems[:0] = [f"data of {', '.join(rs)}: {why}" for why, rs in missing.items()]
    ddp = "skipped (--no-ddp)" if a.no_ddp or a.preflight else "no configuration to run"
    if ddp_cfg is not None and not (a.no_ddp or a.preflight):
        try: ddp = "ok: " + ddp_check(ddp_cfg[0])
        except Exception as e:
            ddp = f"FAILED: {type(e).__name__}: {str(e)[:300]}"
            problems.append(f"DDP (2 gloo processes): {type(e).__name__}: {str(e)[:500]}")
    print(report(rows, a.mfu, a.preflight, a.quick))
    if not a.preflight: print(f"DDP wrapping: {ddp}")
    if not a.preflight:
        print(f"pinned loaders: {next((r['pin'] for r in rows if 'pin' in r), '-')}; compile: off in the CPU steps "
              "(the gpu tiers leave it off)")
    skipped = [r for r in todo if r not in GPU_SH_RUNS]
    if skipped: print(f"not run by ci/gpu.sh (checked all the same): {', '.join(skipped)}")
    verdict = "FAILED" if problems else "ok"
    n = f"{len(problems)} problem{'s' * (len(problems) != 1)}"
    print(f"\ngpu {'preflight' if a.preflight else 'dry run'}: {verdict} ({n}) in {time.time() - t0:.0f} s")
    for p in problems: print(f"  - {p}")
    return 1 if problems else 0


def report(rows: list[dict], mfu: float, preflight: bool, quick: bool = False) -> str:
    "The table, as markdown."
    if preflight:
        head = "| run | data available |\n|---|---|\n"
        return "gpu tier preflight (parameters and data)\n" + head + "\n".join(
            f"| {r['run']} | {r.get('data', r.get('ok'))} |" for r in rows)
    head = (f"| run | configuration | params (M) | memory (GiB) / {H200_GIB:.0f} | GFLOP/step | step ms "
            f"(at {mfu:.0%} MFU) | steps | run (all seeds) | data offline | 3 CPU steps |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---|---|\n")
    lines = []
    for r in rows:
        if "params_m" in r and "gflop" not in r:                            # too big: sized, not built
            lines.append(f"| {r['run']} | {r['config']} | {r['params_m']:.1f} | {r['mem_gib']:.1f} (weights, AdamW) "
                         f"| | | | | {r['data']} | {r['ok']} |")
        elif "params_m" in r:
            lines.append(f"| {r['run']} | {r['config']} | {r['params_m']:.1f} | {r['mem_gib']:.1f} | "
                         f"{r['gflop']:.0f} | {r['step_ms']:.1f} ({r['bound']}) | {r['steps']} | "
                         f"{fmt_min(r['run_min'])} | {r['data']} | "
                         f"{r['ok']} |")
        else:
            lines.append(f"| {r['run']} | {r['config']} | | | | | | | {r.get('data', '')} | {r['ok']} |")
    gpu_sh = sum(r.get("run_min", 0) for r in rows if r["run"] in GPU_SH_RUNS)
    which = "the configurations above" if quick else "all runs"
    return (head + "\n".join(lines) + f"\n\nci/gpu.sh's pretraining, {which}: "
            f"~{fmt_min(gpu_sh)} on one H200 at {mfu:.0%} MFU (training steps only: probes, monitors and evaluation "
            f"come on top)")


if __name__ == "__main__":
    sys.exit(main())
