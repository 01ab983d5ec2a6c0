"""The benchmarks' own arithmetic (their timings are measured, not tested: see bench/RESULTS.md)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from time_to_learned import learned_at  # noqa: E402


def _rows(knn, secs):
    return [dict(step=str(31 * i), images_seen=str(3968 * i), train_seconds=str(s), online_knn=str(k))
            for i, (k, s) in enumerate(zip(knn, secs))]


def test_learned_at_is_the_first_point_five_points_above_the_step0_twin():
    r = learned_at(_rows([0.40, 0.44, 0.4499, 0.45, 0.30, 0.60], [0, 10, 20, 30, 40, 50]))
    assert (r["twin"], r["seconds"], r["step"], r["images"], r["final"]) == (0.40, 30.0, 93, 3 * 3968, 0.60)
    never = learned_at(_rows([0.40, 0.42, 0.44], [0, 10, 20]))
    assert never["seconds"] is None and never["total_seconds"] == 20.0
    with pytest.raises(ValueError, match="step-0"):
        learned_at(_rows([0.4, 0.5], [0, 1])[1:])


def test_the_last_block_twins_compute_the_default_step_s_numbers():
    "bench/train_step.py --query-only times twins of the model: same targets (full last block) and predictions."
    import torch
    from train_step import last_block_twin
    from jepa_nb.core import make_generator
    from jepa_nb.ijepa import IJEPA, ijepa_targets
    from jepa_nb.masks import MaskCollator, build_masker
    from jepa_nb.methods import PretrainConfig
    cfg = PretrainConfig(embed_dim=32, depth=2, num_heads=2, pred_emb_dim=16, pred_depth=2, min_keep=4)
    model = IJEPA.build(cfg, 1)
    ctx, tgt = MaskCollator(build_masker(cfg, cfg.grid)).sample_masks(8, make_generator(0))
    imgs = torch.randn(8, 1, 32, 32, generator=make_generator(1))
    full, fast = last_block_twin(model, True, False), last_block_twin(model, False, True)
    assert type(full.target_encoder).__name__ == "FullLastBlock" and fast.predictor.query_only_last
    assert torch.equal(ijepa_targets(full.target_encoder, imgs, tgt), ijepa_targets(model.target_encoder, imgs, tgt))
    with torch.no_grad():
        h = model.encoder(imgs, ctx)
        assert torch.allclose(fast.predictor(h, ctx, tgt), model.predictor(h, ctx, tgt), atol=1e-6)
        assert not model.predictor.query_only_last                  # the default model is left as it was
