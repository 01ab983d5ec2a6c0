"""Write data/reference/RESULTS.md: the per-seed tables of the cpu references (one row per seed, then mean ± std).

    python ci/make_results.py [--tier cpu] [--check]

Reads only data/reference/<run>/<tier>.json (written by ci/make_reference.py, which keeps each seed's values under
`per_seed`), so the page says exactly what the gate holds. `--check` exits 1 when the page on disk is out of date.
"""
import argparse, json, statistics, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFS = ROOT / "data" / "reference"
BAR = 0.05          # the course's standard: pretrained minus untrained twin, linear and kNN, on every seed
PRED_BAR = 0.03     # issue 15's bar for the prediction term: I-JEPA minus its SIGReg-alone twin


def load(run: str, tier: str) -> dict | None:
    p = REFS / run / f"{tier}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def fmt(v, pct=False) -> str:
    if v is None: return "–"
    return f"{100 * v:+.1f}" if pct else f"{v:.3f}"


def mean_std(values, digits: int = 3) -> str:
    v = [x for x in values if x is not None]
    if not v: return "–"
    return f"{statistics.mean(v):.{digits}f} ± {statistics.stdev(v):.{digits}f}" if len(v) > 1 else f"{v[0]:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def pretrain_section(run: str, label: str, tier: str) -> str:
    ref = load(run, tier)
    if ref is None or "per_seed" not in ref: return f"*{run}: no {tier} reference with per-seed values yet.*"
    per = {int(s): m for s, m in ref["per_seed"].items()}
    rows, low, white = [], [], all("linear_margin_white" in m for m in per.values())
    for s, m in sorted(per.items()):
        dl, dk = m["linear_acc"] - m["linear_acc_random_init"], m["knn_acc"] - m["knn_acc_random_init"]
        if round(dl, 3) < BAR or round(dk, 3) < BAR: low.append(s)     # 3 decimals, as tests/test_references.py
        row = [str(s), fmt(m["linear_acc"]), fmt(m["linear_acc_random_init"]), fmt(dl, True), fmt(m["knn_acc"]),
               fmt(m["knn_acc_random_init"]), fmt(dk, True)]
        if white: row += [fmt(m["linear_margin_white"], True), fmt(m["knn_margin_white"], True)]
        if "final_pred_loss" in m:
            row += [f"{m['final_pred_loss']:.4f} / {m['final_pos_only_loss']:.4f}",
                    f"{m.get('final_pred_loss_stroke', float('nan')):.4f} / {m.get('final_pos_only_loss_stroke', float('nan')):.4f}"]
        rows.append(row)
    col = lambda k: [m.get(k) for m in per.values()]
    marg = lambda a, b: [m[a] - m[b] for m in per.values()]
    mean = ["mean ± std", mean_std(col("linear_acc")), mean_std(col("linear_acc_random_init")),
            mean_std([100 * x for x in marg("linear_acc", "linear_acc_random_init")], 1), mean_std(col("knn_acc")),
            mean_std(col("knn_acc_random_init")), mean_std([100 * x for x in marg("knn_acc", "knn_acc_random_init")], 1)]
    header = ["seed", "linear", "twin", "margin (points)", "kNN", "twin", "margin (points)"]
    if white:
        header += ["linear margin, whitened", "kNN margin, whitened"]
        mean += [mean_std([100 * x for x in col("linear_margin_white")], 1), mean_std([100 * x for x in col("knn_margin_white")], 1)]
    if any("final_pred_loss" in m for m in per.values()):
        header += ["prediction / position-only loss", "same, stroke tokens"]
        mean += ["", ""]
    verdict = (f"**≥ {100 * BAR:.0f} points over the twin on linear and kNN on every seed: "
               + ("yes**" if not low else f"no** — below the bar on seed(s) {low}"))
    if white:
        low_w = [s for s, m in sorted(per.items()) if round(min(m["linear_margin_white"], m["knn_margin_white"]), 3) < BAR]
        verdict += ("\n\n**The same on whitened features** (lesson 07: probes an invertible linear map of the features "
                    "cannot move): " + ("**yes**" if not low_w else f"**no** — below the bar on seed(s) {low_w}"))
    return f"### {label} (`{run}`, {tier} tier, seeds {sorted(per)})\n\n" + table(header, rows + [mean]) + "\n\n" + verdict


def ablation_section(tier: str) -> str:
    "Issue 15's gate on the prediction term: experiment 10's default minus the same run with `pred_weight=0`, per seed."
    full, abl = load("10_pretrain", tier), load("10_pretrain_sigreg_alone", tier)
    if not (full and abl and "per_seed" in full and "per_seed" in abl):
        return f"*10_pretrain_sigreg_alone: no {tier} reference with per-seed values yet.*"
    f = {int(s): m for s, m in full["per_seed"].items()}
    a = {int(s): m for s, m in abl["per_seed"].items()}
    rows, low, seeds = [], [], sorted(set(f) & set(a))
    for s in seeds:
        dl, dk = f[s]["linear_acc"] - a[s]["linear_acc"], f[s]["knn_acc"] - a[s]["knn_acc"]
        dlw = f[s]["linear_margin_white"] - a[s]["linear_margin_white"]
        dkw = f[s]["knn_margin_white"] - a[s]["knn_margin_white"]
        if round(max(dl, dk), 3) < PRED_BAR: low.append(s)
        rows.append([str(s), f"{fmt(f[s]['linear_acc'])} / {fmt(f[s]['knn_acc'])}", f"{fmt(a[s]['linear_acc'])} / {fmt(a[s]['knn_acc'])}",
                     fmt(dl, True), fmt(dk, True), fmt(max(dl, dk), True), fmt(dlw, True), fmt(dkw, True),
                     f"{fmt(a[s]['linear_margin_white'], True)} / {fmt(a[s]['knn_margin_white'], True)}",
                     f"{a[s]['final_pred_loss_stroke'] - a[s]['final_pos_only_loss_stroke']:+.4f}"])
    verdict = (f"**The prediction term adds ≥ {100 * PRED_BAR:.0f} points (the better probe) on every seed: "
               + ("yes**" if not low else f"no** — under the bar on seed(s) {low}"))
    header = ["seed", "default: linear / kNN", "SIGReg alone: linear / kNN", "adds, linear", "adds, kNN", "adds, better probe",
              "adds, whitened linear", "adds, whitened kNN", "SIGReg alone − twin, whitened (linear / kNN)",
              "SIGReg alone: prediction − position-only, stroke tokens"]
    return (f"### The default against SIGReg alone (`10_pretrain` minus `10_pretrain_sigreg_alone`, {tier} tier, "
            f"seeds {seeds})\n\n"
            "The same run of experiment 10 with the prediction loss's weight 0 (`-p pred_weight=0`): SIGReg on the online encoder "
            "is then all that trains it (the predictor gets no gradient). Points are accuracy × 100.\n\n"
            + table(header, rows) + "\n\n" + verdict)


def recipes_section(tier: str) -> str:
    ref = load("14_recipe_search", tier)
    if ref is None or "per_seed" not in ref: return "*14_recipe_search: no reference with per-seed values yet.*"
    per = {int(s): m for s, m in ref["per_seed"].items()}
    recipes = [k[len("linear_acc_"):] for k in next(iter(per.values())) if k.startswith("linear_acc_") and k != "linear_acc_random_init"]
    rows = []
    for r in recipes:
        lin = [m[f"linear_acc_{r}"] for m in per.values()]
        knn = [m[f"knn_acc_{r}"] for m in per.values()]
        over = [m.get(f"over_sigreg_alone_min_{r}") for m in per.values()]
        yard = [m.get(f"pred_minus_yardstick_{r}") for m in per.values()]
        yard_s = [m.get(f"pred_minus_yardstick_stroke_{r}") for m in per.values()]
        ratio = [m.get(f"grad_sigreg_over_pred_{r}") for m in per.values()]
        per_seed = lambda key: " / ".join(fmt(m.get(f"{key}_{r}"), True) for m in per.values())   # points, in seed order
        alone = r.endswith("sigreg_alone") or all(v is None for v in over)   # no SIGReg-alone run to compare with
        rows.append([f"`{r}`", " / ".join(fmt(v) for v in lin), " / ".join(fmt(v) for v in knn),
                     per_seed("linear_margin_min"), per_seed("knn_margin_min"),
                     per_seed("linear_margin_white_min"), per_seed("knn_margin_white_min"),
                     "–" if alone else per_seed("over_sigreg_alone_min"),
                     "–" if alone else per_seed("over_sigreg_alone_white_min"),
                     " / ".join("–" if v is None or v != v else f"{v:+.4f}" for v in yard),
                     " / ".join("–" if v is None or v != v else f"{v:+.4f}" for v in yard_s),
                     " / ".join("–" if v is None else f"{v:.2f}×" for v in ratio)])
    twin = " / ".join(f"{m['linear_acc_random_init']:.3f}, {m['knn_acc_random_init']:.3f}" for m in per.values())
    header = ["recipe", "linear", "kNN", "linear − twin", "kNN − twin", "linear − twin, whitened", "kNN − twin, whitened",
              "over SIGReg alone (better probe)", "over SIGReg alone, whitened (better probe)",
              "prediction − position-only", "same, stroke tokens", "|∇ SIGReg| / |∇ prediction| at the end"]
    return (f"### What each term contributes (`14_recipe_search`, {tier} tier; values per seed {sorted(per)}, in that order)\n\n"
            f"Untrained twin (linear, kNN) per seed: {twin}. Points are accuracy × 100.\n\n" + table(header, rows))


def masking_section(tier: str) -> str:
    ref = load("13_ablate_masking", tier)
    if ref is None or "per_seed" not in ref: return f"*13_ablate_masking: no {tier} reference with per-seed values yet.*"
    per = {int(s): m for s, m in ref["per_seed"].items()}
    first = next(iter(per.values()))
    settings = [k[len("probe_acc_"):] for k in first if k.startswith("probe_acc_") and not k.startswith("probe_acc_std")]
    rows = [[f"`{s}`", " / ".join(fmt(m[f"probe_acc_{s}"]) for m in per.values()), " / ".join(fmt(m.get(f"knn_acc_{s}")) for m in per.values()),
             mean_std([m[f"probe_acc_{s}"] for m in per.values()]), mean_std([m.get(f"knn_acc_{s}") for m in per.values()])] for s in settings]
    crops = [(f, k) for f in ("ijepa", "lejepa", "mae") for k in (f"linear_crop_gain_{f}", f"knn_crop_gain_{f}") if k in first]
    crop_rows = [[f, k.split("_crop")[0], " / ".join(fmt(m[k], True) for m in per.values())] for f, k in crops]
    return (f"### Masking and crops (`13_ablate_masking`, {tier} tier; values per seed {sorted(per)})\n\n"
            + table(["setting", "linear", "kNN", "linear mean ± std", "kNN mean ± std"], rows)
            + ("\n\nWhat the random-resized crop adds (with minus without, points, per seed):\n\n"
               + table(["family", "probe", "gain"], crop_rows) if crop_rows else ""))


def metrics_section(run: str, tier: str) -> str:
    "Every gated metric of a reference, one column per seed (or mean ± std where the reference predates per-seed values)."
    ref = load(run, tier)
    if ref is None: return f"*{run}: no {tier} reference.*"
    if "per_seed" in ref:
        per = {int(s): m for s, m in ref["per_seed"].items()}
        rows = [[f"`{name}`", *(fmt(per[s].get(name)) for s in sorted(per)), mean_std([per[s].get(name) for s in per])] for name in ref["metrics"]]
        return (f"### `{run}` ({tier} tier)\n\n" + table(["metric", *(f"seed {s}" for s in sorted(per)), "mean ± std"], rows))
    spread = ref.get("spread", {})
    rows = [[f"`{name}`", f"{e['value']:.3f}", f"{spread[name]['std']:.3f}" if name in spread else "–"] for name, e in ref["metrics"].items()]
    return (f"### `{run}` ({tier} tier, seeds {ref.get('seeds')}; built before references kept each seed's values)\n\n"
            + table(["metric", "mean", "std"], rows))


FAMILIES = [("ijepa", "I-JEPA"), ("lejepa", "LeJEPA"), ("vicreg", "VICReg"), ("mae", "MAE"), ("random_init", "untrained twin"),
            ("pixels", "raw pixels")]
READOUTS = [("linear_acc", "linear"), ("knn_acc", "kNN"), ("linear_acc_white", "linear, whitened"), ("knn_acc_white", "kNN, whitened"),
            ("attentive_acc", "attentive"), ("low_shot_5_acc", "low-shot, 5 / class"),
            ("position_r2", "position R²"), ("size_r2", "size R²"), ("count_acc", "count")]


def families_section(tier: str) -> str:
    "Experiment 15: every encoder under every readout, the values of each seed in order; then each method's margins over its twin."
    ref = load("15_compare", tier)
    if ref is None or "per_seed" not in ref: return f"*15_compare: no {tier} reference with per-seed values yet.*"
    per = [m for _, m in sorted((int(s), m) for s, m in ref["per_seed"].items())]
    seeds = sorted(int(s) for s in ref["per_seed"])
    have = [(k, label) for k, label in FAMILIES if f"linear_acc_{k}" in per[0]]
    cell = lambda key: " / ".join(fmt(m.get(key)) for m in per)
    readouts = [(r, label) for r, label in READOUTS if f"{r}_random_init" in per[0]]   # references before a readout existed lack it
    rows = [[label, *(cell(f"{r}_{k}") for r, _ in readouts)] for k, label in have]
    margins = []
    for k, label in have:
        if k in ("random_init", "pixels"): continue
        over_twin = lambda r: [m[f"{r}_{k}"] - m[f"{r}_random_init"] for m in per]     # per seed
        dl, dk = over_twin("linear_acc"), over_twin("knn_acc")
        white = [" / ".join(fmt(v, True) for v in over_twin(r)) if f"{r}_{k}" in per[0] else "–"
                 for r in ("linear_acc_white", "knn_acc_white")]
        secs = " / ".join(f"{m[f'train_seconds_{k}']:.0f}" for m in per if f"train_seconds_{k}" in m)
        ok = all(min(round(a, 3), round(b, 3)) >= BAR for a, b in zip(dl, dk))   # 3 decimals: accuracies on 1,000 images
        margins.append([label, " / ".join(fmt(v, True) for v in dl), " / ".join(fmt(v, True) for v in dk),
                        "yes" if ok else "**no**", *white, secs or "–"])
    return (f"### Every encoder, every readout (`15_compare`, {tier} tier; values per seed {seeds}, in that order)\n\n"
            + table(["encoder", *(label for _, label in readouts)], rows)
            + f"\n\nEach method against its untrained twin (points, per seed) and its training seconds for the same images seen:\n\n"
            + table(["method", "linear − twin", "kNN − twin", f"≥ {100 * BAR:.0f} on both, every seed", "linear − twin, whitened",
                     "kNN − twin, whitened", "training seconds"], margins))


def render(tier: str) -> str:
    return "\n\n".join([
        "<!-- generated by ci/make_results.py from data/reference/*/" + tier + ".json: do not edit by hand -->",
        f"# Results: the {tier} references, seed by seed",
        "Every number here is read from `data/reference/<run>/" + tier + ".json`, which `ci/make_reference.py` wrote from "
        "real runs of the experiments (`per_seed` keeps each seed's values; `metrics` the mean and tolerance the "
        "gate checks). Margins are in points (accuracy × 100). Back to the [README](../../README.md).",
        "## Pretraining (experiment 10): each method against its untrained twin",
        pretrain_section("10_pretrain", "I-JEPA", tier), pretrain_section("10_pretrain_lejepa", "LeJEPA", tier),
        "## The prediction term's share (experiments 10 and 14)", ablation_section(tier), recipes_section(tier),
        "## Masking and hand-crafted augmentations (experiment 13)", masking_section(tier),
        "## The three families on the same encoder, data and budget (experiment 15)", families_section(tier),
        "## Probes, JEPA-SCORE and the three families (experiments 11, 12, 15): every gated metric",
        *(metrics_section(run, tier) for run in ("11_probe", "12_jepa_score_ood", "15_compare"))]) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tier", default="cpu")
    ap.add_argument("--check", action="store_true", help="exit 1 if the page on disk differs from the references")
    a = ap.parse_args(argv)
    out, text = REFS / "RESULTS.md", render(a.tier)
    if a.check:
        ok = out.is_file() and out.read_text() == text
        print(f"{out.relative_to(ROOT)} is {'up to date' if ok else 'out of date: run python ci/make_results.py'}")
        return 0 if ok else 1
    out.write_text(text)
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
