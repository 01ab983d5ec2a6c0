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
