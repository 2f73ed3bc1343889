"""Task generators and metrics."""

import numpy as np
import pytest

from kdwide import effective_logit, metrics, tasks


def test_slice_task_perfect_teacher_and_shifted_boundary():
    x, z_teacher, y = tasks.slice_task(401, teacher_peak_logit=5.0, teacher_frequency=1.0)
    assert x.shape == z_teacher.shape == y.shape == (401,)
    np.testing.assert_array_equal(y, (z_teacher > 0).astype(int))
    _, _, y_shifted = tasks.slice_task(401, boundary_shift=0.2)
    assert np.mean(y_shifted != y) == pytest.approx(0.2, abs=0.01)
    with pytest.raises(ValueError, match="n_points"):
        tasks.slice_task(1)


@pytest.mark.slow  # several seconds on 2 cores: left out of make test-fast
def test_effective_logit_jumps_exactly_at_label_changes():
    x, z_teacher, y = tasks.slice_task(801, teacher_peak_logit=4.0)
    z = np.asarray(effective_logit(z_teacher, y, rho=0.5, temperature=2.0))
    indices, jumps, other = metrics.label_change_jumps(z, y)
    assert len(indices) == 1 and jumps[0] > 20 * other
    _, jumps_soft, other_soft = metrics.label_change_jumps(z_teacher, y)
    assert jumps_soft[0] <= 2 * other_soft  # the teacher itself is continuous


def test_sphere_inputs_and_centred_teacher():
    x = tasks.sphere_inputs(np.random.default_rng(0), 100, 4)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0)
    np.testing.assert_array_equal(x, tasks.sphere_inputs(np.random.default_rng(0), 100, 4))
    anchors = tasks.sphere_inputs(np.random.default_rng(1), 30, 4)
    c = tasks.centred_coefficients(np.random.default_rng(2), anchors)
    assert abs(c.sum()) < 1e-12 and np.abs(c @ anchors).max() < 1e-12
    kernel = lambda a, b: 5.0 + np.maximum(a @ b.T, 0)  # noqa: E731  (large constant component)
    z = tasks.kernel_expansion_logits(kernel, x, anchors, c)
    assert 0.2 < tasks.class_balance(z > 0) < 0.8
    with pytest.raises(ValueError, match="anchors"):
        tasks.centred_coefficients(np.random.default_rng(0), anchors[:4])
    with pytest.raises(ValueError, match="rng"):
        tasks.sphere_inputs(0, 10, 4)  # a seed is not a generator: draws come from kdwide.seeds.Streams
    with pytest.raises(ValueError, match="coefficients"):
        tasks.kernel_expansion_logits(kernel, x, anchors, c[:-1])


def test_risk_error_and_folded_angle():
    assert metrics.transfer_risk([1.0, -2.0, 3.0, 0.5], [2.0, 1.0, -1.0, 0.1]) == 0.5
    assert metrics.classification_error(np.array([1.0, -1.0, 2.0]), np.array([1, 1, 0])) == pytest.approx(2 / 3)
    np.testing.assert_allclose(metrics.folded_angle([-1.0, 0.0, 0.5]), [0.0, np.pi / 2, np.pi / 3])
    with pytest.raises(ValueError, match="cosine"):
        metrics.folded_angle([1.5])
    with pytest.raises(ValueError, match="class|empty"):
        tasks.class_balance([])


def test_expansion_norm_is_the_oracle_norm_and_refuses_a_zero_expansion():
    anchors = tasks.sphere_inputs(np.random.default_rng(3), 6, 3)
    coefficients = tasks.centred_coefficients(np.random.default_rng(4), anchors)
    gaussian = lambda x1, x2=None: np.exp(-np.sum((x1[:, None] - (x1 if x2 is None else x2)[None]) ** 2, -1))  # noqa: E731
    gram = gaussian(anchors)
    assert tasks.expansion_norm(gaussian, anchors, coefficients) == pytest.approx(np.sqrt(coefficients @ gram @ coefficients))
    with pytest.raises(ValueError, match="positive definite"):
        tasks.expansion_norm(gaussian, anchors, np.zeros(6))
