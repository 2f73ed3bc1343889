"""Chapter 1's flip point: where the effective logit crosses to the teacher's side against the label."""

import numpy as np
import pytest

from kdwide import effective_logit
from kdwide.experiments.discontinuity import flip_teacher_logit


@pytest.mark.parametrize("rho, temperature", [(0.9, 1.0), (0.8, 0.5), (0.95, 4.0), (0.7, 2.0)])
def test_the_effective_logit_changes_sign_at_the_flip_point(rho: float, temperature: float) -> None:
    flip = float(flip_teacher_logit(rho=rho, temperature=temperature))
    assert 0 < flip < np.inf
    # teacher says class 1 (z_t > 0), label says 0: the label wins inside the flip point, the teacher outside
    inside = float(effective_logit(flip * (1 - 1e-6), 0, rho=rho, temperature=temperature))
    outside = float(effective_logit(flip * (1 + 1e-6), 0, rho=rho, temperature=temperature))
    assert inside < 0 < outside
    # mirror image: teacher says 0, label says 1
    assert float(effective_logit(-flip * (1 - 1e-6), 1, rho=rho, temperature=temperature)) > 0
    assert float(effective_logit(-flip * (1 + 1e-6), 1, rho=rho, temperature=temperature)) < 0


def test_no_flip_point_when_the_hard_label_always_wins() -> None:
    rho, temperature = 0.6, 2.0  # rho <= T / (T + 1) = 2/3
    assert float(flip_teacher_logit(rho=rho, temperature=temperature)) == np.inf
    z_teacher = np.linspace(0.01, 200.0, 400)
    assert np.all(np.asarray(effective_logit(z_teacher, np.zeros(400, int), rho=rho, temperature=temperature)) < 0)
    assert float(flip_teacher_logit(rho=1.0, temperature=temperature)) == 0.0
    assert float(flip_teacher_logit(rho=0.0, temperature=temperature)) == np.inf


def test_flip_point_broadcasts_and_rejects_bad_input() -> None:
    grid = flip_teacher_logit(rho=np.array([0.9, 0.99])[:, None], temperature=np.array([0.5, 1.0, 2.0])[None, :])
    assert grid.shape == (2, 3) and np.all(np.diff(grid, axis=0) < 0)  # closer to soft labels: flips sooner
    with pytest.raises(ValueError, match="rho"):
        flip_teacher_logit(rho=1.5, temperature=1.0)
    with pytest.raises(ValueError, match="temperature"):
        flip_teacher_logit(rho=0.5, temperature=0.0)
