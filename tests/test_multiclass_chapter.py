"""Chapter 7's experiments (kdwide.experiments.multiclass): targets and their ρ → 0⁺ limit, kernel teachers, the M1
checks, the margin law of M2, the digits records and the claims' rules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kdwide
from kdwide import datasets
from kdwide.architecture import Architecture
from kdwide.experiments import multiclass
from kdwide.stats import ols_slope
from kdwide.linearized import factorize_kernel
from kdwide.predict import converged_students
from kdwide.seeds import Streams


def rows(seed: int = 0, n: int = 12, k: int = 5, scale: float = 2.0):
    return multiclass.random_teacher_rows(Streams(seed), n_rows=n, n_classes=k, logit_scale=scale)


def test_hard_label_limit_is_centred_one_hot_and_checks_its_inputs() -> None:
    limit = multiclass.hard_label_limit([1, 0, 3], 4)
    assert np.allclose(limit.sum(axis=1), 0.0) and np.allclose(limit[0], [-0.25, 0.75, -0.25, -0.25])
    with pytest.raises(ValueError, match="labels"):
        multiclass.hard_label_limit([0, 4], 4)
    with pytest.raises(ValueError, match="n_classes"):
        multiclass.hard_label_limit([0], 1)


def test_student_targets_columns_are_the_effective_logits_the_teacher_and_the_hard_limit() -> None:
    z, y = rows()
    targets = multiclass.student_targets(z, y, rho_values=[0.0, 0.3, 1.0], temperature=2.0)
    assert targets.shape == (12, 5, 3)
    assert np.allclose(targets[:, :, 0], multiclass.hard_label_limit(y, 5))
    assert np.allclose(targets[:, :, 1], kdwide.effective_logits(z, y, rho=0.3, temperature=2.0), atol=1e-12)
    assert np.allclose(targets[:, :, 2], z - z.mean(axis=1, keepdims=True), atol=1e-12)
    with pytest.raises(ValueError, match="rho"):
        multiclass.student_targets(z, y, rho_values=[1.5], temperature=1.0)
    with pytest.raises(ValueError, match="teacher_logits"):
        multiclass.student_targets(z[:, :1], y, rho_values=[0.5], temperature=1.0)


def test_the_small_rho_student_tends_to_log_one_over_rho_times_the_hard_limit_student() -> None:
    rng = Streams(3).rng("test")
    x = rng.normal(size=(60, 4))
    kernel = np.asarray(Architecture(depth=1, activation="relu", w_std=1.4, b_std=0.1).kernel(x))
    z, y = rows(seed=4, n=40, k=4, scale=3.0)
    rho_values = [0.0, 1e-8, 1e-16]
    targets = multiclass.student_targets(z, y, rho_values=rho_values, temperature=1.0)
    outputs = converged_students(factorize_kernel(kernel[:40, :40]), targets.reshape(40, -1),
                                 kernel_test_train=kernel[40:, :40]).test_outputs.reshape(20, 4, 3)
    # f(rho) = log(1/rho) f_hard + f_C + o(1): the error of f / log(1/rho) halves when log(1/rho) doubles
    errors = [np.abs(outputs[:, :, j] / np.log(1 / rho_values[j]) - outputs[:, :, 0]).max() for j in (1, 2)]
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=0.05)
    limit = multiclass.class_predictions(outputs[:, :, 0])
    assert np.mean(multiclass.class_predictions(outputs[:, :, 2]) == limit) >= np.mean(
        multiclass.class_predictions(outputs[:, :, 1]) == limit)


def test_kernel_teacher_interpolates_its_targets_and_checks_inputs() -> None:
    x = Streams(5).rng("x").normal(size=(15, 3))
    kernel = np.asarray(Architecture(depth=1, activation="relu", w_std=1.4, b_std=0.1).kernel(x))
    labels = np.arange(15) % 3
    teacher = multiclass.multiclass_kernel_teacher(kernel, kernel, labels, n_classes=3, target_logit=2.0)
    assert np.allclose(teacher, 2.0 * multiclass.hard_label_limit(labels, 3), atol=1e-8)
    ridged = multiclass.multiclass_kernel_teacher(kernel, kernel, labels, n_classes=3, target_logit=2.0, ridge=1.0)
    assert np.abs(ridged).max() < np.abs(teacher).max()
    with pytest.raises(ValueError, match="target_logit"):
        multiclass.multiclass_kernel_teacher(kernel, kernel, labels, n_classes=3, target_logit=0.0)
    with pytest.raises(ValueError, match="kernel_teacher"):
        multiclass.multiclass_kernel_teacher(kernel[:3, :3], kernel, labels, n_classes=3, target_logit=1.0)


def test_relative_residual_is_rounding_level_at_the_root_and_not_elsewhere() -> None:
    z, y = rows(k=7, n=30)
    student = np.asarray(kdwide.effective_logits(z, y, rho=0.4, temperature=1.5))
    residual = multiclass.relative_stationarity_residual(student, z, y, rho=0.4, temperature=1.5)
    assert residual.max() < 1e-12 and np.all(residual[np.arange(30), y] == 0)
    moved = multiclass.relative_stationarity_residual(student + 0.01 * np.eye(7)[(y + 1) % 7], z, y, rho=0.4,
                                                      temperature=1.5)
    assert moved.max() > 1e-4


def test_zero_sum_hessian_eigenvalues_match_autodiff_of_the_potential() -> None:
    z, y = rows(k=4, n=3)
    student = np.asarray(kdwide.effective_logits(z, y, rho=0.3, temperature=2.0))
    eigenvalues = multiclass.zero_sum_hessian_eigenvalues(student, rho=0.3, temperature=2.0)
    assert eigenvalues.shape == (3, 3) and np.all(eigenvalues > 0)
    basis = np.linalg.qr(np.eye(4) - 0.25)[0][:, :3]
    for i in range(3):
        q = jax.nn.softmax(jnp.asarray(z[i]) / 2.0)
        potential = lambda v: (0.3 * (jax.nn.logsumexp(v / 2.0) - q @ v / 2.0)  # noqa: E731
                               + 0.7 * (jax.nn.logsumexp(v) - v[y[i]]))
        hessian = np.asarray(jax.hessian(potential)(jnp.asarray(student[i])))
        assert np.allclose(np.linalg.eigvalsh(basis.T @ hessian @ basis), eigenvalues[i], rtol=1e-10, atol=1e-14)


def test_binary_reduction_is_exact() -> None:
    margins, labels = np.linspace(-5, 5, 11), np.arange(11) % 2
    assert multiclass.binary_reduction_difference(margins, labels, rho=0.6, temperature=3.0) < 1e-12


def test_asymptotic_margins_approach_the_effective_margins_at_the_predicted_rate() -> None:
    z, y = rows(k=6, n=10)
    gaps = []
    for rho in (1e-4, 1e-6):
        logits = np.asarray(kdwide.effective_logits(z, y, rho=rho, temperature=1.0))
        margins = logits[np.arange(10), y][:, None] - logits
        gaps.append(np.abs(multiclass.asymptotic_margins(z, y, rho=rho, temperature=1.0) - margins).max())
    assert gaps[1] < 1e-5 and 50 < gaps[0] / gaps[1] < 200  # O(rho) at T = 1: a factor 100
    with pytest.raises(ValueError, match="rho"):
        multiclass.asymptotic_margins(z, y, rho=0.0, temperature=1.0)


def test_margin_limit_records_and_the_local_slope() -> None:
    z, y = rows(k=3, n=2)
    records = multiclass.margin_limit_records(z, y, rho_values=[1e-3, 1e-5], temperature_values=[1.0],
                                              repetition={"seed": 0, "repetition": 1})
    assert len(records) == 2 * 2 * 1 * 2 and {r["repetition"] for r in records} == {1}
    assert all(abs(r["local_slope"] - 1) < 1e-2 for r in records)
    assert all(abs(r["remainder"]) < 2e-3 for r in records)
    with pytest.raises(ValueError, match="rho_values"):
        multiclass.margin_limit_records(z, y, rho_values=[0.0, 0.1], temperature_values=[1.0])


def test_ols_slope() -> None:
    assert ols_slope([0, 1, 2], [1, 3, 5]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="x"):
        ols_slope([1, 1], [0, 1])


def digit_run(splits: int = 2):
    images, labels = datasets.load_digits()
    kernel = Architecture(depth=1, activation="relu", w_std=1.4, b_std=0.1).kernel
    return multiclass.digit_records(kernel, images, labels, class_counts=[2, 3], splits=Streams(0).repetitions(splits),
                                    n_student_per_class=5, teacher_sizes_per_class=[5, 20], rho_values=[0.0, 0.5, 1.0],
                                    temperature=2.0, teacher_target_logit=3.0)  # fmt: skip


def test_digit_records_cover_the_design() -> None:
    records = digit_run()
    assert len(records) == 2 * 2 * 2 * 3  # K x splits x teachers x rho
    hard = [r for r in records if r["rho"] == 0.0]
    assert all(r["student_error"] == r["hard_student_error"] for r in hard)
    assert {r["n_student"] for r in records} == {10, 15}
    assert all(0 <= r["student_error"] <= 1 and 0 <= r["teacher_error"] <= 1 for r in records)
    table = multiclass.soft_label_table(records)
    assert len(table) == 4 and all(r["splits"] == 2 for r in table)
    with pytest.raises(ValueError, match="rho_values"):
        multiclass.digit_records(None, np.zeros((5, 2)), np.zeros(5), class_counts=[2], splits=[], n_student_per_class=1,
                                 teacher_sizes_per_class=[1], rho_values=[0.5, 1.0], temperature=1.0,
                                 teacher_target_logit=1.0)  # fmt: skip


def fake_records(gain_by_class: dict[int, float], weak_soft_penalty: float) -> list[dict]:
    """Records where soft labels gain ``gain_by_class[K]`` at ρ = 0.5 over hard labels, with split-to-split noise."""
    records = []
    for k, gain in gain_by_class.items():
        for size in (10, 40):
            for split in range(8):
                noise = 0.002 * ((split * 7) % 5 - 2)
                errors = {0.0: 0.1 + noise, 0.5: 0.1 + noise - gain + 0.001 * (split % 2),
                          1.0: 0.1 + noise - gain + (weak_soft_penalty if size == 10 else 0.0)}
                records += [{"n_classes": k, "teacher_size": size, "seed": 0, "repetition": split, "rho": rho,
                             "temperature": 2.0, "teacher_error": 0.05, "student_error": e, "hard_student_error": errors[0.0]}
                            for rho, e in errors.items()]  # fmt: skip
    return records


def limit_records(rate_offset: float = 0.0, slope: float = 1.0, bend=lambda rho: 1.0) -> list[dict]:
    records = []
    for row in range(6):
        for rho in (1e-3, 1e-4, 1e-5, 1e-6):
            remainder = (1 + 0.1 * row) * rho ** (0.5 + rate_offset) * bend(rho)
            records.append({"seed": 0, "repetition": 0, "row": row, "k": 1, "temperature": 2.0, "rho": rho,
                            "margin": slope * np.log(1 / rho) + 1.0 + remainder, "remainder": remainder,
                            "local_slope": 1.0})  # fmt: skip
    return records


def decide(records, limit, *, residual=1e-15, eigenvalue=1e-3, binary=0.0):
    return multiclass.claims(residuals=np.array([[residual]]), eigenvalues=np.array([[eigenvalue]]),
                             binary_difference=binary, limit_records=limit, records=records)


def test_claims_hold_on_records_that_show_them_and_fail_otherwise() -> None:
    good = decide(fake_records({2: 0.001, 10: 0.02}, weak_soft_penalty=0.03), limit_records())
    assert all(entry["holds"] for entry in good.values()), good
    assert not decide(fake_records({2: 0.001, 10: 0.02}, 0.03), limit_records(), residual=1e-6)["M1"]["holds"]
    assert not decide(fake_records({2: 0.001, 10: 0.02}, 0.03), limit_records(), eigenvalue=-1e-9)["M1"]["holds"]
    assert not decide(fake_records({2: 0.001, 10: 0.02}, 0.03), limit_records(rate_offset=0.2))["M2"]["holds"]
    assert not decide(fake_records({2: 0.001, 10: 0.02}, 0.03), limit_records(slope=1.1))["M2"]["holds"]
    # a next order that bends the log-log line but dies out (rho^(1/2) against rho) passes; a log correction, whose
    # bend does not halve over the grid, fails
    converging = limit_records(bend=lambda rho: 1.0 - 5.0 * rho**0.5)
    assert decide(fake_records({2: 0.001, 10: 0.02}, 0.03), converging)["M2"]["holds"]
    logarithmic = limit_records(bend=lambda rho: 1.0 + 0.3 * np.log(1 / rho))
    assert not decide(fake_records({2: 0.001, 10: 0.02}, 0.03), logarithmic)["M2"]["holds"]
    no_gain = decide(fake_records({2: 0.001, 10: -0.01}, 0.03), limit_records())
    assert not no_gain["M3"]["holds"] and not no_gain["M4"]["holds"]
    assert not decide(fake_records({2: 0.001, 10: 0.02}, 0.0), limit_records())["M3"]["holds"]  # weak teacher's ρ=1 ties
    assert not decide(fake_records({2: 0.02, 10: 0.02}, 0.03), limit_records())["M4"]["holds"]
