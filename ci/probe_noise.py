"""How much of a pretraining run's margin over its untrained twin is the test set's sampling noise?

    python ci/probe_noise.py RUN_DIR [RUN_DIR ...] [--n-boot 2000] [--online]

For each experiment-10 run folder (its checkpoint.pt and params.json), the linear and kNN probes of the evaluated
encoder and of its untrained twin are refit exactly as the notebook fits them (same images, transform, seed and
probe), and `jepa_nb.eval.paired_margin` resamples the test images with each image's pair of outcomes kept together.
The same for the probes on whitened features (lesson 07's `whiten=True`, which an invertible linear map of the
features cannot move); a run made before those existed has no recorded value for them to check against.
Prints one row per run and probe: the margin in points, its bootstrap standard error, the 95 % interval and the share
of test images the two encoders disagree on. Exit status 1 if a refit margin differs from the run's results.json
(the probes would not be the run's), 2 if a folder is not a run whose checkpoint loads. Used for the note on seed 6
in experiment 14 ("How much of a seed's margin is the test set's noise?") and the README.
With --online, I-JEPA's online (context) encoder is probed instead of the EMA target the run evaluates: the one to
read when the target cannot move (`ema=[1.0, 1.0]`: the target *is* the twin). The run recorded no such value, so
nothing is checked against results.json then.
With --low-shot N [N ...] --draws K, the low-shot linear probe of experiments 11 and 15 instead: N labelled train
images per class drawn K times (`balanced_subset` with seeds seed, seed+1, ...), each draw's probe fitted for both
encoders; one row per draw and a summary per run and N. It says how much of a low-shot margin is the draw (the README's
5-shot note: seeds 11-14, three draws each).
"""
import argparse, json, sys
from pathlib import Path


def _encoders(run_dir: Path, online: bool):
    "The run's config, probe images, test images, transform, and its evaluated encoder beside the untrained twin."
    from jepa_nb.checkpoint import eval_transform, load_pretrained
    from jepa_nb.data import load_data
    from jepa_nb.dataparams import load_options
    from jepa_nb.vit import PooledEncoder, build_encoder
    params = json.loads((run_dir / "params.json").read_text())["params"]     # n_probe is not a config field
    model, cfg, _ = load_pretrained(run_dir / "checkpoint.pt")
    opts = load_options(cfg.dataset, cfg.image_mode, cfg.image_size)       # the data as the run read it
    full_train, test = (load_data(cfg.dataset, split, seed=cfg.seed, **opts) for split in ("train", "test"))
    probe_train, tf = full_train.head(params.get("n_probe", 0)), eval_transform(cfg, full_train)
    if online and model.target_encoder is model.encoder:
        raise KeyError(f"--online: the {type(model).__name__} run has no separate online and target encoder")
    evaluated = model.encoder if online else model.target_encoder
    encoders = {"pretrained": PooledEncoder(evaluated).eval(),
                "twin": PooledEncoder(build_encoder(cfg, full_train.images.shape[1])).eval()}   # the notebook's twin
    return cfg, probe_train, test, tf, encoders


def noise(run_dir: Path, n_boot: int, online: bool = False) -> list[dict]:
    from jepa_nb.eval import extract_features, knn_predict, linear_probe, paired_margin, whiten_features
    cfg, probe_train, test, tf, encoders = _encoders(run_dir, online)
    right, y = {}, test.labels.numpy()
    for name, enc in encoders.items():
        ftr, fte = (extract_features(enc, d, transform=tf) for d in (probe_train, test))
        for sfx, (a, b) in (("", (ftr, fte)), ("_white", whiten_features(ftr, fte))):   # lesson 07: whiten=True
            right[name, "linear" + sfx] = linear_probe(a, probe_train.labels, b, test.labels, seed=cfg.seed).test_pred == y
            right[name, "knn" + sfx] = knn_predict(a, probe_train.labels, b).numpy() == y
    results = json.loads((run_dir / "results.json").read_text())
    rows = []
    for probe in ("linear", "knn", "linear_white", "knn_white"):
        pm = paired_margin(right["pretrained", probe], right["twin", probe], n_boot=n_boot, seed=cfg.seed)
        key = probe.replace("_white", "_margin_white") if probe.endswith("_white") else f"{probe}_margin"
        rows.append({"run": str(run_dir), "seed": cfg.seed, "probe": probe, **pm, "recorded": None if online else results.get(key)})
    return rows


def low_shot_draws(run_dir: Path, shots: list[int], draws: int, online: bool = False) -> list[dict]:
    "The low-shot linear probe's margin over the twin, per number of labels per class and draw."
    from jepa_nb.eval import balanced_subset, extract_features, linear_probe
    cfg, probe_train, test, tf, encoders = _encoders(run_dir, online)
    feats = {name: [extract_features(enc, d, transform=tf) for d in (probe_train, test)] for name, enc in encoders.items()}
    rows = []
    for n in shots:
        for d in range(draws):
            idx = balanced_subset(probe_train.labels, n, cfg.seed + d)
            acc = {name: linear_probe(ftr[idx], probe_train.labels[idx], fte, test.labels, seed=cfg.seed + d).acc
                   for name, (ftr, fte) in feats.items()}
            rows.append({"run": str(run_dir), "seed": cfg.seed, "shots": n, "draw": d, **acc,
                         "margin": acc["pretrained"] - acc["twin"]})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="experiment-10 run folders (checkpoint.pt, params.json)")
    ap.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples of the test set")
    ap.add_argument("--online", action="store_true", help="probe I-JEPA's online encoder, not the EMA target")
    ap.add_argument("--low-shot", type=int, nargs="+", metavar="N", help="labelled images per class: the low-shot probe")
    ap.add_argument("--draws", type=int, default=3, help="with --low-shot: draws of the labelled images per N")
    a = ap.parse_args(argv)
    if a.low_shot and (min(a.low_shot) < 2 or a.draws < 1):
        ap.error(f"--low-shot needs N >= 2 per class (a validation split needs them) and --draws >= 1, "
                 f"got {a.low_shot} and {a.draws}")
    missing = [str(r) for r in a.runs if not (r / "checkpoint.pt").is_file() or not (r / "params.json").is_file()]
    if missing: ap.error(f"not an experiment-10 run folder with checkpoint.pt and params.json: {missing}")
    from jepa_nb.checkpoint import CheckpointError
    from jepa_nb.config import ConfigError
    errors = (CheckpointError, ConfigError, KeyError)        # a foreign or damaged run: say which, and why
    if a.low_shot: return _print_low_shot(a, errors)
    bad = 0
    print("| run | seed | probe | margin (points) | bootstrap SE | 95 % interval | test images they disagree on |")
    print("|---|---|---|---|---|---|---|")
    for r in a.runs:
        try: rows = noise(r, a.n_boot, a.online)
        except errors as e:
            print(f"probe_noise.py: cannot refit the probes of {r}: {e}", file=sys.stderr)
            return 2
        for row in rows:
            print(f"| {row['run']} | {row['seed']} | {row['probe']} | {100 * row['margin']:+.1f} | "
                  f"{100 * row['se']:.2f} | {100 * row['lo']:+.1f} .. {100 * row['hi']:+.1f} | "
                  f"{100 * row['disagree']:.1f} % |", flush=True)
            if row["recorded"] is not None and abs(row["recorded"] - row["margin"]) > 1e-9:
                print(f"  the run's results.json says {row['probe']}_margin {row['recorded']:+.4f}: "
                      "these are not its probes")
                bad += 1
    return 1 if bad else 0


def _print_low_shot(a, errors: tuple) -> int:
    print("| run | seed | labels per class | draw | pretrained | twin | margin (points) |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    for r in a.runs:
        try: rows = low_shot_draws(r, a.low_shot, a.draws, a.online)
        except errors as e:
            print(f"probe_noise.py: cannot refit the probes of {r}: {e}", file=sys.stderr)
            return 2
        for row in rows:
            print(f"| {row['run']} | {row['seed']} | {row['shots']} | {row['draw']} | {row['pretrained']:.3f} | "
                  f"{row['twin']:.3f} | {100 * row['margin']:+.1f} |", flush=True)
        for n in a.low_shot:
            m = [100 * row["margin"] for row in rows if row["shots"] == n]
            summary.append(f"{r} ({n} per class): margin mean {sum(m) / len(m):+.1f}, min {min(m):+.1f}, max {max(m):+.1f} "
                           f"over {len(m)} draws")
    print("\n" + "\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
