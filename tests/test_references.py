"""What the cpu references hold, seed by seed (issue 15's gate, built once with
`ci/make_reference.py --tier cpu --seeds 0,1,...,9` for the pretraining runs and their SIGReg-alone ablation
`--only 10_pretrain_sigreg_alone`, seeds 0-2 for experiment 14).

The course's standard is asserted as it is written. Where the course's own I-JEPA does not meet it at CPU scale, the
test is marked `xfail(strict=True)` with the measured reason: it is reported on every run, and it fails the day the
references meet the bar, so that the README's verdicts get updated with them."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFS = ROOT / "data" / "reference"
GATE_SEEDS = list(range(10))
BAR, PRED_BAR = 0.05, 0.03


def _ref(run: str, tier: str = "cpu") -> dict:
    return json.loads((REFS / run / f"{tier}.json").read_text())


def _per_seed(run: str) -> dict[int, dict]:
    return {int(s): m for s, m in _ref(run)["per_seed"].items()}


def _below_bar(run: str) -> dict[int, tuple[float, float]]:
    "Seeds whose margin over the untrained twin is under the bar on the linear or the kNN probe: {seed: (linear, kNN)}."
    out = {}
    for s, m in _per_seed(run).items():
        margin = (round(m["linear_acc"] - m["linear_acc_random_init"], 3), round(m["knn_acc"] - m["knn_acc_random_init"], 3))
        if min(margin) < BAR: out[s] = margin
    return out


@pytest.mark.parametrize("run", ["10_pretrain", "10_pretrain_lejepa"])
def test_pretraining_references_keep_every_gate_seed(run):
    ref = _ref(run)
    assert sorted(int(s) for s in ref["per_seed"]) == GATE_SEEDS == sorted(ref["seeds"])
    for name, entry in ref["metrics"].items():          # the gated value is the mean of the seeds on record
        values = [m[name] for m in ref["per_seed"].values()]
        assert abs(sum(values) / len(values) - entry["value"]) < 1e-9, name
    for s, m in ref["per_seed"].items():                # and each seed's margins are its own accuracies' differences
        assert abs(m["linear_margin"] - (m["linear_acc"] - m["linear_acc_random_init"])) < 1e-9, s
        assert {"linear_margin_white", "knn_margin_white"} <= set(m), f"seed {s} lacks the whitened probes (lesson 07)"


def _below_bar_white(run: str, bar: tuple[float, float] = (BAR, BAR)) -> dict[int, tuple[float, float]]:
    "Seeds whose margin on whitened features (lesson 07) is under `bar` (linear, kNN) on either probe: {seed: (linear, kNN)}."
    margins = {s: (round(m["linear_margin_white"], 3), round(m["knn_margin_white"], 3)) for s, m in _per_seed(run).items()}
    return {s: m for s, m in margins.items() if m[0] < bar[0] or m[1] < bar[1]}


def test_lejepa_beats_its_twin_on_every_seed():
    assert not _below_bar("10_pretrain_lejepa"), f"LeJEPA under {BAR} over its untrained twin (linear, kNN): {_below_bar('10_pretrain_lejepa')}"


def test_ijepa_beats_its_twin_on_every_seed():
    assert not _below_bar("10_pretrain"), f"I-JEPA under {BAR} over its untrained twin (linear, kNN): {_below_bar('10_pretrain')}"


def test_ijepa_beats_its_twin_on_knn_probe_on_every_seed():
    low = {s: m for s, m in _below_bar("10_pretrain").items() if m[1] < BAR}
    assert not low, f"I-JEPA under {BAR} over its untrained twin on the kNN probe: {low}"


def test_ijepa_beats_its_twin_on_linear_probe_on_every_seed():
    low = {s: m for s, m in _below_bar("10_pretrain").items() if m[0] < BAR}
    assert not low, f"I-JEPA under {BAR} over its untrained twin on the linear probe: {low}"


def test_ijepa_predictor_beats_its_yardstick_over_all_target_tokens_on_every_seed():
    "Over all target tokens, the predictor ends below the (in-sample, optimistic) position-only guess on every seed."
    above = {s: (round(m["final_pred_loss"], 4), round(m["final_pos_only_loss"], 4)) for s, m in _per_seed("10_pretrain").items()
             if m["final_pred_loss"] >= m["final_pos_only_loss"]}
    assert not above, f"prediction vs position-only loss over all target tokens, seeds where it is not below: {above}"


def test_ijepa_predictor_ends_below_its_yardstick_on_stroke_tokens():
    above = {s: (round(m["final_pred_loss_stroke"], 4), round(m["final_pos_only_loss_stroke"], 4)) for s, m in _per_seed("10_pretrain").items()
             if m["final_pred_loss_stroke"] >= m["final_pos_only_loss_stroke"]}
    assert not above, f"prediction vs position-only loss on stroke tokens, seeds where it is not below: {above}"


@pytest.mark.parametrize("white", ["", "_white"])
def test_prediction_adds_over_sigreg_alone_on_every_seed(white):
    "The default minus the same recipe with the prediction loss switched off, the better probe per seed (whitened too)."
    per = _per_seed("14_recipe_search")
    adds = {s: round(m[f"over_sigreg_alone{white}_min_ijepa"], 3) for s, m in per.items()}
    assert len(adds) >= 3 and all(a >= PRED_BAR for a in adds.values()), f"I-JEPA minus SIGReg alone (better probe), per seed: {adds}"


def test_the_gates_sigreg_alone_runs_are_the_default_without_prediction():
    "The ten-seed ablation reference is experiment 10's default run with the prediction loss's weight 0, nothing else."
    abl, default = _ref("10_pretrain_sigreg_alone"), _ref("10_pretrain")
    assert sorted(_per_seed("10_pretrain_sigreg_alone")) == GATE_SEEDS
    assert abl["params"]["pred_weight"] == 0 and default["params"]["pred_weight"] == 1
    differ = {k for k in abl["params"].keys() | default["params"].keys() if abl["params"].get(k) != default["params"].get(k)}
    assert differ == {"pred_weight"}, differ
    for s, m in _per_seed("10_pretrain_sigreg_alone").items():       # no gradient reaches the predictor: it stays above
        assert m["final_pred_loss_stroke"] > m["final_pos_only_loss_stroke"], s       # the position-only yardstick


def test_prediction_adds_over_sigreg_alone_on_every_gate_seed():
    "Issue 15's gate: the default minus the same run without the prediction loss, the better probe, on each of seeds 0-9."
    full, abl = _per_seed("10_pretrain"), _per_seed("10_pretrain_sigreg_alone")
    adds = {s: (round(full[s]["linear_acc"] - abl[s]["linear_acc"], 3), round(full[s]["knn_acc"] - abl[s]["knn_acc"], 3))
            for s in GATE_SEEDS}
    low = {s: a for s, a in adds.items() if max(a) < PRED_BAR}
    assert not low, f"I-JEPA minus SIGReg alone (linear, kNN) under {PRED_BAR} on both probes: {low}"


def test_the_ablation_is_of_the_default():
    "Experiment 14's ablation is of experiment 10's recipe; with SIGReg off (the paper's loss) the predictor still reads the context."
    ref, default = _ref("14_recipe_search"), _ref("10_pretrain")["params"]
    assert {"ijepa", "sigreg_alone", "prediction_alone"} <= set(ref["params"]["recipes"])
    for k in ("patch_size", "masking", "epochs", "embed_dim", "depth", "pred_depth", "pred_emb_dim", "lr", "sigreg_weight", "ema"):
        assert ref["params"][k] == default[k], k
    for s, m in ref["per_seed"].items():
        assert m["pred_minus_yardstick_stroke_prediction_alone"] < 0, s       # its predictor reads the context
        assert m["pred_minus_yardstick_sigreg_alone"] > 0, s                  # an untrained predictor does not


@pytest.mark.xfail(strict=True, reason="measured (experiment 14): at the default since single-block masking (120 epochs) "
                                       "the paper's loss alone, SIGReg off, ends below its twin on every probe on seed 0 "
                                       "(whitened -9.9 / -13.4) and keeps +4.2 / +2.7 on seed 2; at the previous default "
                                       "(multi-block, 90 epochs) it learned on seeds 0-2 (whitened +6.1 to +10.3)")
def test_the_papers_loss_alone_learns_content_on_every_seed():
    "With SIGReg off (the paper's loss, EMA paced) the encoder still beats its twin on whitened features on every seed."
    low = {s: (round(m["linear_margin_white_min_prediction_alone"], 3), round(m["knn_margin_white_min_prediction_alone"], 3))
           for s, m in _per_seed("14_recipe_search").items()
           if min(m["linear_margin_white_min_prediction_alone"], m["knn_margin_white_min_prediction_alone"]) < BAR}
    assert not low, f"the paper's loss alone under {BAR} over its twin on whitened features (linear, kNN): {low}"


@pytest.mark.xfail(strict=True, reason="measured (lesson 07, experiments 10 and 14): on whitened features, which an "
                                       "invertible linear map of the features cannot move, the course's I-JEPA beats its twin on "
                                       "every seed of 0-9 but by under 5 points on some (linear +2.7 to +9.0; RESULTS.md)")
def test_ijepa_beats_its_twin_on_whitened_probes_on_every_seed():
    low = _below_bar_white("10_pretrain")
    assert not low, f"I-JEPA under {BAR} over its untrained twin on whitened features (linear, kNN): {low}"


def test_lejepa_beats_its_twin_on_whitened_probes_on_every_seed():
    low = _below_bar_white("10_pretrain_lejepa")
    assert not low, f"LeJEPA under {BAR} over its untrained twin on whitened features (linear, kNN): {low}"


def test_ijepa_beats_its_twin_on_whitened_probes_beyond_the_test_sets_noise_on_every_seed():
    "Content, not conditioning: on whitened features each seed's margin is over 2 standard errors of the test set's noise."
    se2 = (0.022, 0.026)       # 2 x the margin's standard error on 1,000 test digits, linear / kNN (ci/probe_noise.py, lesson 07)
    low = _below_bar_white("10_pretrain", se2)
    assert not low, f"I-JEPA's whitened margins (linear, kNN) within the test set's noise on seeds: {low}"
