r"""Result 1: the transfer risk bound for a perfect teacher (claims R1–R5), through kernel algebra.

Setting
-------
The student is linearized, :math:`f(x; w) = f(x; w_0) + \Delta w^\top\phi(x)` (C2). A **perfect teacher** is one whose
logit is itself a linear function of the student's random features,

.. math:: z_t(x) = (\Delta w_* - \Delta w_z)^\top\phi(x), \qquad y_g = 1\{z_t(x) > 0\},

where the **zero weight change** :math:`\Delta w_z` cancels the initial function,
:math:`f(x; w_0) + \Delta w_z^\top\phi(x) = 0`. At infinite width we build it as a kernel expansion over anchor
points :math:`a_j`: :math:`\Delta w_* - \Delta w_z = \phi(A)c`, so :math:`z_t(x) = \sum_j c_j\Theta(x, a_j)` and
:math:`\|\Delta w_* - \Delta w_z\|^2 = c^\top\Theta(A, A)c` (:func:`perfect_teacher`).

Initial function. We take :math:`f(x; w_0) = 0`, hence :math:`\Delta w_z = 0` (the default everywhere below): the
infinite-width mean predictor, or exactly a *centred* network :math:`f(x; w) - f(x; w_0)`. With a random
:math:`f(\cdot; w_0)` a zero weight change still exists at finite width (minus the readout layer's weights,
:func:`readout_zero_weight_change`), but its squared norm grows like the width, so it would dominate every angle
below; :class:`ZeroWeightChange` carries the three numbers that enter the kernel algebra in that case.

The student trained on :math:`n` samples converges to :math:`\Delta\hat w = \phi(X)\Theta^{-1}(z_{\mathrm{eff}} -
f(X; w_0))` (C2). Every quantity of the theorem is an inner product of these vectors, hence a kernel expression:

.. math::

    \langle \Delta w_* - \Delta w_z,\ \Delta\hat w\rangle = z_t(X)^\top\Theta^{-1}\Delta z, \qquad
    \|\Delta\hat w\|^2 = \Delta z^\top\Theta^{-1}\Delta z, \qquad
    \cos\angle(\phi(x), \Delta w_* - \Delta w_z) = \frac{z_t(x)}{\|\Delta w_* - \Delta w_z\|\sqrt{\Theta(x, x)}} .

The bound (R2). With :math:`\alpha_n = \angle(\Delta w_* - \Delta w_z, \Delta\hat w - \Delta w_z)` and the angle
distribution :math:`p(\beta) = P_x[\bar\alpha(\phi(x), \Delta w_* - \Delta w_z) > \beta]`,

.. math:: R_n = P_x[z_t z_s < 0] \le p(\pi/2 - \alpha_n).

Proof in one line: if teacher and student disagree at :math:`x`, the unfolded angles of :math:`\phi(x)` to the two
weight vectors lie on opposite sides of :math:`\pi/2`, and they differ by at most :math:`\alpha_n` (triangle
inequality for angles), so the teacher's folded angle exceeds :math:`\pi/2 - \alpha_n`. The implication holds point
by point, so on one sample the empirical risk never exceeds the empirical :math:`p`. The paper writes the folded
:math:`\bar\alpha_n`; the two agree when :math:`\cos\alpha_n \ge 0`, which is the case for every student we meet. When
it is negative the statement with the folded angle is false (then :math:`1 - R_n \le p(\pi/2 - \bar\alpha_n)`), so
:func:`transfer_risk_bound` uses the unfolded angle, with :math:`p(\beta) = 1` for :math:`\beta < 0`.

Hard labels. :math:`\rho = 0` has no finite effective logit, but as :math:`\rho \to 0` the effective logits are
:math:`s\,(\log\frac{T(1-\rho)}{\rho} + \mathrm{softplus}(s z_t/T)) + o(1)` with :math:`s = 2y_g - 1`
(:func:`hard_label_asymptote`): a common diverging magnitude times :math:`s`, plus a bounded remainder. The sign of the
student, :math:`\alpha_n`, the risk and the bound depend only on the direction of :math:`\Delta\hat w`, which therefore
tends to that of the kernel interpolant of the :math:`\pm1` labels (:func:`hard_label_direction`). That limit is
our "hard-label" point :math:`\rho = 0`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from kdwide import linearized
from kdwide.architecture import Architecture
from kdwide.experiments import claim
from kdwide.linearized import COSINE_SLACK, ZeroWeightChange, student_oracle_cosine
from kdwide.metrics import folded_angle, transfer_risk
from kdwide.networks import random_features
from kdwide.predict import converged_students, grid_targets
from kdwide.seeds import Streams
from kdwide.stats import loglog_fit, paired_difference, seed_means
from kdwide.tasks import PerfectTeacher, centred_coefficients, class_balance, perfect_teacher, sphere_inputs
from kdwide.validation import (
    check_finite,
    check_hard_labels,
    check_positive_int,
    check_positive_real,
    check_same_shape,
    check_soft_ratio,
    check_temperature,
)

__all__ = [
    "feature_oracle_angles",
    "TailEstimate",
    "angle_tail",
    "alpha_n",
    "transfer_risk_bound",
    "PhuongLampertBound",
    "phuong_lampert_bound",
    "hard_label_direction",
    "hard_label_asymptote",
    "max_margin_violation_share",
    "readout_zero_weight_change",
    "FiniteWidthCheck",
    "finite_width_check",
    "SweepResult",
    "transfer_risk_sweep",
    "claims",
]

KernelFn = Callable[..., Any]
"""``kernel_fn(x1, x2=None) -> (n1, n2)`` kernel matrix (``x2=None``: the square kernel with exact diagonal)."""

_HALF_PI = 0.5 * np.pi


# ---------------------------------------------------------------------------------------------------------------------
# The perfect teacher and the angle distribution p(β)
# ---------------------------------------------------------------------------------------------------------------------


def feature_oracle_angles(teacher_logits: np.ndarray, kernel_diagonal: np.ndarray, *, oracle_norm: float) -> np.ndarray:
    r"""Folded angles :math:`\bar\alpha(\phi(x), \Delta w_* - \Delta w_z)` of sample inputs (R1), by kernel algebra.

    :math:`\cos = |z_t(x)| / (\|\Delta w_* - \Delta w_z\|\sqrt{\Theta(x, x)})`: the teacher's *normalized margin*.

    Args:
      teacher_logits: :math:`z_t(x_i)`, shape ``(m,)``.
      kernel_diagonal: :math:`\Theta(x_i, x_i) = \|\phi(x_i)\|^2`, shape ``(m,)`` (exact diagonal).
      oracle_norm: :math:`\|\Delta w_* - \Delta w_z\|` > 0.

    Returns:
      ``(m,)`` angles in :math:`[0, \pi/2]`.

    Raises:
      ValueError: shapes differ, non-finite input, a non-positive diagonal or norm, or a cosine above 1 beyond
        round-off (Cauchy–Schwarz violated: the logits, diagonal and norm do not come from one kernel).
    """
    teacher_logits = np.asarray(teacher_logits, float)
    kernel_diagonal = np.asarray(kernel_diagonal, float)
    check_same_shape(teacher_logits=teacher_logits, kernel_diagonal=kernel_diagonal)
    check_finite(teacher_logits, "teacher_logits")
    check_finite(kernel_diagonal, "kernel_diagonal")
    if np.any(kernel_diagonal <= 0):
        raise ValueError("kernel_diagonal must be > 0 (squared feature norms)")
    if not (np.isfinite(oracle_norm) and oracle_norm > 0):
        raise ValueError(f"oracle_norm must be finite and > 0, got {oracle_norm!r}")
    cosine = np.abs(teacher_logits) / (oracle_norm * np.sqrt(kernel_diagonal))
    if np.any(cosine > 1 + COSINE_SLACK):
        raise ValueError(
            f"a normalized margin exceeds 1 ({cosine.max():.6g}): teacher_logits, kernel_diagonal and oracle_norm "
            "are inconsistent (Cauchy–Schwarz)"
        )
    return folded_angle(np.minimum(cosine, 1.0))


class TailEstimate(NamedTuple):
    """A probability estimated on a sample, with its binomial standard error ``sqrt(p(1-p)/m)``."""

    probability: np.ndarray
    standard_error: np.ndarray


def angle_tail(angles: np.ndarray, beta: Any) -> TailEstimate:
    r"""Empirical angle distribution :math:`\hat p(\beta) = \#\{i: \bar\alpha_i > \beta\}/m` and its standard error.

    :math:`\hat p` is a valid tail function: non-increasing and right-continuous in :math:`\beta`, 1 for
    :math:`\beta < \min_i\bar\alpha_i` (in particular for :math:`\beta < 0`), 0 for :math:`\beta \ge \pi/2`.

    Args:
      angles: sample of folded angles, shape ``(m,)``, values in :math:`[0, \pi/2]`.
      beta: scalar or array of thresholds (any real; NaN not allowed).

    Returns:
      :class:`TailEstimate` with arrays of the shape of ``beta``.
    """
    angles = np.asarray(angles, float).ravel()
    if angles.size == 0:
        raise ValueError("angles must not be empty")
    check_finite(angles, "angles")
    if np.any(angles < 0) or np.any(angles > _HALF_PI + 1e-12):
        raise ValueError("angles must lie in [0, pi/2] (folded angles)")
    beta = np.asarray(beta, float)
    if np.any(np.isnan(beta)):
        raise ValueError("beta must not be NaN")
    ordered = np.sort(angles)
    count_above = ordered.size - np.searchsorted(ordered, beta, side="right")
    probability = count_above / ordered.size
    return TailEstimate(probability, np.sqrt(probability * (1 - probability) / ordered.size))


# ---------------------------------------------------------------------------------------------------------------------
# Student–oracle angle α_n and the bound
# ---------------------------------------------------------------------------------------------------------------------


def alpha_n(
    factorization: linearized.KernelFactorization,
    teacher_train: np.ndarray,
    target_train: np.ndarray,
    *,
    oracle_norm: float,
    zero_change: ZeroWeightChange | None = None,
) -> np.ndarray:
    r"""Folded angle :math:`\bar\alpha_n = \bar\alpha(\Delta w_* - \Delta w_z, \Delta\hat w - \Delta w_z)` (R2).

    Same arguments as :func:`student_oracle_cosine`; returns scalar or ``(k,)`` angles in :math:`[0, \pi/2]`.
    """
    return folded_angle(
        student_oracle_cosine(factorization, teacher_train, target_train, oracle_norm=oracle_norm, zero_change=zero_change)
    )


def transfer_risk_bound(feature_angles: np.ndarray, cosine: Any) -> TailEstimate:
    r"""The bound :math:`R_n \le p(\pi/2 - \alpha_n)` (R2) with :math:`p` estimated on a sample.

    Uses the unfolded :math:`\alpha_n = \arccos(\cos\alpha_n)`; it equals the folded :math:`\bar\alpha_n` of the paper
    when the cosine is ≥ 0, and for a negative cosine the bound is the trivial 1 (module docstring).

    Args:
      feature_angles: sample of :math:`\bar\alpha(\phi(x), \Delta w_* - \Delta w_z)`, shape ``(m,)``
        (:func:`feature_oracle_angles`), ideally independent of the test sample used for the risk.
      cosine: :math:`\cos\alpha_n`, scalar or array (:func:`student_oracle_cosine`).

    Returns:
      :class:`TailEstimate` of the bound (standard error from the ``m`` angle samples), shape of ``cosine``.
    """
    cosine = np.asarray(cosine, float)
    if np.any(np.isnan(cosine)) or np.any(np.abs(cosine) > 1):
        raise ValueError("cosine must lie in [-1, 1] (no NaN)")
    return angle_tail(feature_angles, _HALF_PI - np.arccos(cosine))


class PhuongLampertBound(NamedTuple):
    """Values of the Phuong–Lampert bound, one per n, and the angles β that attain them (arrays of shape ``(k,)``)."""

    bound: np.ndarray
    beta: np.ndarray


def phuong_lampert_bound(feature_angles: np.ndarray, n_values) -> PhuongLampertBound:
    r"""Phuong & Lampert's (ICML 2019) expected-risk bound for a distilled linear student, in random-feature space.

    .. math:: \mathbb E_{X_n}[R_n] \le \min_{\beta\in[0,\pi/2]} \big[\,p(\pi/2 - \beta) + p(\beta)^n\,\big].

    Our statement and adaptation, in the notation of this module: their student is linear in the input
    :math:`x`; here the input is the random feature :math:`\phi(x)` and the teacher's weight is
    :math:`\Delta w_* - \Delta w_z`. Its logic: a pure-soft student (ρ = 1) learns the projection of the oracle onto
    the span of the training features, so :math:`\bar\alpha_n \le \min_i \bar\alpha(\phi(x_i), \Delta w_* - \Delta w_z)`;
    with probability :math:`1 - p(\beta)^n` some training input has angle ≤ β, and then :math:`R_n \le p(\pi/2 - \beta)`.
    It bounds the *expected* risk over training sets and applies to ρ = 1 only.

    The minimum over β of these step functions is attained on an interval between consecutive breakpoints
    :math:`\{0, \pi/2, \bar\alpha_i, \pi/2 - \bar\alpha_i\}`; we evaluate every breakpoint and every midpoint, so the
    minimum of the empirical expression is exact. The candidates and their tails do not depend on n: they are
    computed once for all ``n_values``.

    Args:
      feature_angles: sample of folded feature–oracle angles, shape ``(m,)``.
      n_values: training-set sizes, each ≥ 1, shape ``(k,)``.

    Returns:
      :class:`PhuongLampertBound` with arrays of shape ``(k,)``.
    """
    n_values = [check_positive_int(n, "n_values") for n in np.atleast_1d(np.asarray(n_values, dtype=object))]
    angles = np.asarray(feature_angles, float).ravel()
    breakpoints = np.unique(np.clip(np.concatenate([[0.0, _HALF_PI], angles, _HALF_PI - angles]), 0.0, _HALF_PI))
    candidates = np.concatenate([breakpoints, 0.5 * (breakpoints[1:] + breakpoints[:-1])])
    complement_tail = angle_tail(angles, _HALF_PI - candidates).probability
    tail = angle_tail(angles, candidates).probability
    bounds, betas = [], []
    for n in n_values:
        values = complement_tail + tail**n
        best = int(np.argmin(values))
        bounds.append(float(values[best]))
        betas.append(float(candidates[best]))
    return PhuongLampertBound(np.array(bounds), np.array(betas))


# ---------------------------------------------------------------------------------------------------------------------
# Targets: soft, mixed and the hard-label limit
# ---------------------------------------------------------------------------------------------------------------------


def hard_label_direction(y_hard: np.ndarray) -> np.ndarray:
    r"""Targets of the hard-label limit ρ → 0: :math:`s = 2y_g - 1 \in \{-1, +1\}`, shape of ``y_hard`` (float64).

    Only the direction of the student's weight change matters for its sign, :math:`\alpha_n`, the risk and the bound,
    and :math:`z_{\mathrm{eff}}/\log(1/\rho) \to s` (see :func:`hard_label_asymptote`).
    """
    check_hard_labels(y_hard)
    return 2.0 * np.asarray(y_hard, float) - 1.0


def hard_label_asymptote(z_teacher: np.ndarray, y_hard: np.ndarray, *, rho: float, temperature: float) -> np.ndarray:
    r"""Small-ρ expansion of the effective logit: :math:`s\,\big(\log\frac{T(1-\rho)}{\rho} + \mathrm{softplus}(s z_t/T)\big)`.

    From C1 with :math:`s = 2y_g - 1`: as :math:`\hat z \to s\infty` the soft term tends to
    :math:`(\rho/T)\,\sigma(-s z_t/T)` and the hard term to :math:`(1-\rho)e^{-s\hat z}`; equating them gives the
    expression, with an error :math:`O(e^{-|\hat z|/T}/\sigma(-s z_t/T))`. The first term is common to all samples
    and diverges; the second is bounded on any training set. Hence the direction of the effective-logit vector
    tends to :math:`s` at the rate :math:`1/\log(1/\rho)`.

    Args:
      z_teacher, y_hard: same shape. rho: in (0, 1). temperature: > 0.
    """
    check_soft_ratio(rho)
    if not 0 < rho < 1:
        raise ValueError(f"rho must lie in (0, 1) for the small-rho expansion, got {rho!r}")
    check_temperature(temperature)
    z_teacher = np.asarray(z_teacher, float)
    check_same_shape(z_teacher=z_teacher, y_hard=np.asarray(y_hard))
    sign = hard_label_direction(y_hard)
    return sign * (np.log(temperature * (1 - rho) / rho) + np.logaddexp(0.0, sign * z_teacher / temperature))


def max_margin_violation_share(factorization: linearized.KernelFactorization, y_hard: np.ndarray) -> float:
    r"""Share of training points whose coefficient in the ±1 interpolant has the wrong sign.

    The interpolant :math:`\phi(X)\Theta^{-1}s` is the hard-margin SVM in the kernel's feature space (the direction that
    gradient descent on the pure hard-label loss approaches as training time → ∞, Soudry et al. 2018) iff its dual
    variables :math:`s_i(\Theta^{-1}s)_i` are all ≥ 0 (KKT conditions with every constraint active). A positive share
    means that the ρ → 0 limit and the ρ = 0, t → ∞ limit are different students.

    Args:
      factorization: of Θ(X, X); y_hard: ``(n,)`` labels.
    """
    sign = hard_label_direction(y_hard)
    duals = sign * np.asarray(linearized.solve(factorization, sign))
    return float(np.mean(duals < 0))


# ---------------------------------------------------------------------------------------------------------------------
# Finite width: explicit random features and the readout zero weight change
# ---------------------------------------------------------------------------------------------------------------------


def readout_zero_weight_change(params: Any) -> np.ndarray:
    r"""A zero weight change of an NTK-parameterized network: minus its readout layer, zero elsewhere.

    The readout is linear in its own weights, :math:`f(x; w) = \frac{\sigma_W}{\sqrt{n_L}}h_L(x)^\top W + \sigma_b b`,
    so :math:`\langle \partial_{(W, b)} f, (W, b)\rangle = f(x; w_0)` and :math:`\Delta w_z = -(W, b)` satisfies
    :math:`f(x; w_0) + \Delta w_z^\top\phi(x) = 0` for every x, exactly. Its squared norm is about the width.

    Args:
      params: pytree from ``init_fn`` of :func:`kdwide.networks.fully_connected_network` (a list of ``(W, b)``
        pairs and empty tuples; the last pair is the readout).

    Returns:
      ``(P,)`` float64 vector in the order of ``ravel_pytree(params)``.
    """
    if not isinstance(params, (list, tuple)):
        raise ValueError("params must be the list of layer parameters returned by init_fn")
    layers = [i for i, layer in enumerate(params) if isinstance(layer, (list, tuple)) and len(layer) == 2]
    if not layers:
        raise ValueError("params has no (W, b) layer")
    readout = layers[-1]
    change = [
        jax.tree_util.tree_map(lambda a: -jnp.asarray(a, jnp.float64) if i == readout else jnp.zeros_like(a, jnp.float64), layer)
        for i, layer in enumerate(params)
    ]
    return np.asarray(ravel_pytree(change)[0])


class FiniteWidthCheck(NamedTuple):
    r"""Output of :func:`finite_width_check`: :math:`\bar\alpha_n` two ways, centred and with a random initial function.

    Attributes:
      alpha_kernel, alpha_weights: ``(k,)`` per ρ, centred network (:math:`\Delta w_z = 0`), from kernel algebra on
        the empirical NTK and from explicit weight vectors.
      alpha_kernel_readout, alpha_weights_readout: the same with the random initial function and the readout zero
        weight change.
      zero_change_norm_squared: :math:`\|\Delta w_z\|^2` of the readout zero weight change.
      n_parameters: P.
    """

    alpha_kernel: np.ndarray
    alpha_weights: np.ndarray
    alpha_kernel_readout: np.ndarray
    alpha_weights_readout: np.ndarray
    zero_change_norm_squared: float
    n_parameters: int


def _weight_space_alpha(oracle: np.ndarray, students: np.ndarray) -> np.ndarray:
    cosine = oracle @ students / (np.linalg.norm(oracle) * np.linalg.norm(students, axis=0))
    return np.arccos(np.minimum(np.abs(cosine), 1.0))


def finite_width_check(
    streams: Streams,
    *,
    width: int,
    architecture: Architecture,
    input_dim: int,
    n_anchors: int,
    n_train: int,
    rho_values: Sequence[float],
    temperature: float,
    teacher_rms_logit: float,
) -> FiniteWidthCheck:
    r""":math:`\bar\alpha_n` of a finite network: kernel algebra on :math:`\hat\Theta = \phi\phi^\top` against explicit vectors.

    Builds the network (stream ``network`` of ``streams``), its explicit random features (:func:`random_features`)
    on the teacher's anchors and the training inputs (streams ``anchors`` of ``streams.child("teacher")`` and
    ``train``: the first ``n_train`` inputs of :func:`transfer_risk_sweep` with the same streams), the oracle
    :math:`\Delta w_* - \Delta w_z = \phi(A)c` (the teacher's centred coefficients, scaled to RMS training logit
    ``teacher_rms_logit``), and the converged students
    :math:`\Delta\hat w = \phi(X)\hat\Theta^{-1}(z - f(X; w_0))` for each ρ, once for the centred network
    (:math:`f(\cdot; w_0) = 0`) and once for the network's own random initial function with the readout zero weight
    change (:func:`readout_zero_weight_change`). Needs ``n_train`` < P (positive-definite :math:`\hat\Theta`).

    Returns:
      :class:`FiniteWidthCheck`.
    """
    check_soft_ratio(np.asarray(rho_values, float), "rho_values")
    check_positive_real(teacher_rms_logit, "teacher_rms_logit")
    init_fn, apply_fn = architecture.network(width=width)
    _, params = init_fn(streams.key("network"), (-1, input_dim))
    teacher_streams = streams.child("teacher")
    anchors = sphere_inputs(teacher_streams.rng("anchors"), n_anchors, input_dim)
    inputs = np.concatenate([anchors, sphere_inputs(streams.rng("train"), n_train, input_dim)])
    features = random_features(apply_fn, params, inputs)
    initial = np.asarray(apply_fn(jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params), inputs))[:, 0]
    phi_anchor, phi_train = features[:n_anchors], features[n_anchors:]
    initial_anchor, initial_train = initial[:n_anchors], initial[n_anchors:]
    coefficients = centred_coefficients(teacher_streams.rng("coefficients"), anchors)
    coefficients *= teacher_rms_logit / np.sqrt(np.mean((phi_train @ (phi_anchor.T @ coefficients)) ** 2))
    oracle = phi_anchor.T @ coefficients
    teacher_train = phi_train @ oracle
    targets = grid_targets(teacher_train, (teacher_train > 0).astype(np.int64), rho=rho_values, temperature=temperature)
    kernel = phi_train @ phi_train.T
    factorization = linearized.factorize_kernel(kernel)
    oracle_norm = float(np.sqrt(coefficients @ (phi_anchor @ phi_anchor.T) @ coefficients))
    zero_change = readout_zero_weight_change(params)
    carried = ZeroWeightChange(initial_train, -float(coefficients @ initial_anchor), float(zero_change @ zero_change))
    return FiniteWidthCheck(
        alpha_kernel=np.asarray(alpha_n(factorization, teacher_train, targets, oracle_norm=oracle_norm)),
        alpha_weights=_weight_space_alpha(oracle, phi_train.T @ np.linalg.solve(kernel, targets)),
        alpha_kernel_readout=np.asarray(
            alpha_n(factorization, teacher_train, targets, oracle_norm=oracle_norm, zero_change=carried)
        ),
        alpha_weights_readout=_weight_space_alpha(
            oracle, phi_train.T @ np.linalg.solve(kernel, targets - initial_train[:, None]) - zero_change[:, None]
        ),
        zero_change_norm_squared=carried.norm_squared,
        n_parameters=int(features.shape[1]),
    )


# ---------------------------------------------------------------------------------------------------------------------
# The experiment of Chapter 3 and its claims
# ---------------------------------------------------------------------------------------------------------------------


class SweepResult(NamedTuple):
    """Output of :func:`transfer_risk_sweep`.

    Attributes:
      records: one dict per (ρ, n) (see :func:`transfer_risk_sweep`).
      feature_angles: ``(n_angle_samples,)`` feature–oracle angles on the independent angle sample (for p(β)).
      class_balance: share of label 1 on the test sample.
      oracle_norm: :math:`\\|\\Delta w_* - \\Delta w_z\\|`.
      hard_label_svm_violation: :func:`max_margin_violation_share` on the largest training set.
      teacher: the :class:`kdwide.tasks.PerfectTeacher` (``perfect_teacher(streams, ...)``, as a chapter builds it).
    """

    records: list[dict]
    feature_angles: np.ndarray
    class_balance: float
    oracle_norm: float
    hard_label_svm_violation: float
    teacher: PerfectTeacher


def _sweep_records(
    streams, full, targets, kernel_test_train, z_train, z_test, angles, train_angles, oracle_norm, *,
    n_values, rho_values, temperature, input_dim,
) -> list[dict]:
    """The records of :func:`transfer_risk_sweep`: one per (n, ρ), from the factorized largest training set."""
    best_sample_angle = np.minimum.accumulate(train_angles)
    phuong_lampert = dict(zip(n_values, phuong_lampert_bound(angles, n_values).bound))
    n_test = len(z_test)
    records = []
    for n in n_values:
        block = linearized.leading_block(full, n)
        student_test = converged_students(block, targets[:n], kernel_test_train=kernel_test_train[:, :n]).test_outputs
        cosine = student_oracle_cosine(block, z_train[:n], targets[:n], oracle_norm=oracle_norm)
        bound = transfer_risk_bound(angles, cosine)
        for column, rho in enumerate(rho_values):
            risk = transfer_risk(z_test, student_test[:, column])
            records.append(
                {
                    **streams.record(), "rho": float(rho), "n_train": int(n), "temperature": float(temperature),
                    "input_dim": int(input_dim),
                    "transfer_risk": risk,
                    "transfer_risk_standard_error": float(np.sqrt(risk * (1 - risk) / n_test)),
                    "cos_alpha_n": float(cosine[column]),
                    "alpha_n": float(folded_angle(cosine[column])),
                    "bound": float(bound.probability[column]),
                    "bound_standard_error": float(bound.standard_error[column]),
                    "phuong_lampert_bound": float(phuong_lampert[n]) if rho == 1 else float("nan"),
                    "min_sample_angle": float(best_sample_angle[n - 1]),
                    "oracle_norm": oracle_norm,
                }
            )
    return records


def transfer_risk_sweep(
    streams: Streams,
    *,
    architecture: Architecture,
    input_dim: int,
    n_anchors: int,
    teacher_rms_logit: float,
    n_values: Sequence[int],
    rho_values: Sequence[float],
    temperature: float,
    n_test: int,
    n_angle_samples: int,
    remove_linear: bool = True,
) -> SweepResult:
    r"""Result 1 on one task: risk, :math:`\bar\alpha_n`, the bound and Phuong–Lampert's bound for every (ρ, n).

    The streams draw the teacher (:func:`kdwide.tasks.perfect_teacher` of ``streams``), nested training sets (stream
    ``train``: the first n of one sample, so the kernel is factorized once, :func:`kdwide.linearized.leading_block`),
    a test sample for the risk (``test``) and an independent *angle sample* for :math:`p(\beta)` (``angles``; it
    needs only teacher logits and the kernel diagonal, so it can be large and cheap). The student is the converged
    linearized student with :math:`f(\cdot; w_0) = 0` (module docstring), with the analytic NTK of ``architecture``.

    Args:
      streams: the repetition's :class:`kdwide.seeds.Streams`.
      architecture: the student (:class:`kdwide.architecture.Architecture`).
      input_dim, n_anchors, teacher_rms_logit, remove_linear: the teacher (:func:`perfect_teacher`).
      n_values: training-set sizes (each ≥ 1).
      rho_values: soft ratios in [0, 1]; 0 is the hard-label limit.
      temperature: T > 0.
      n_test: test inputs for the risk.
      n_angle_samples: inputs for p(β).

    Returns:
      :class:`SweepResult`. Each record has ``seed, repetition, rho, n_train, temperature, input_dim, transfer_risk,
      transfer_risk_standard_error, cos_alpha_n, alpha_n, bound, bound_standard_error, phuong_lampert_bound``
      (the last only for ρ = 1, NaN otherwise), ``min_sample_angle`` (:math:`\min_{i\le n}\bar\alpha(\phi(x_i),
      \Delta w_* - \Delta w_z)`, the angle Phuong & Lampert's argument uses in place of :math:`\bar\alpha_n`) and
      ``oracle_norm``.
    """
    n_values = [check_positive_int(n, "n_values") for n in n_values]
    if not n_values:
        raise ValueError("n_values must not be empty")
    check_positive_int(n_test, "n_test")
    check_positive_int(n_angle_samples, "n_angle_samples")
    check_temperature(temperature)
    check_soft_ratio(np.asarray(rho_values, float), "rho_values")
    check_positive_real(teacher_rms_logit, "teacher_rms_logit")
    kernel_fn = architecture.kernel
    teacher = perfect_teacher(
        streams, kernel_fn=kernel_fn, input_dim=input_dim, n_anchors=n_anchors,
        rms_logit=teacher_rms_logit, remove_linear=remove_linear,
    )
    x_train = sphere_inputs(streams.rng("train"), max(n_values), input_dim)
    x_test = sphere_inputs(streams.rng("test"), n_test, input_dim)
    x_angle = sphere_inputs(streams.rng("angles"), n_angle_samples, input_dim)
    # one kernel call per kind of quantity (every new array shape costs a compilation)
    sizes = np.cumsum([len(x_train), len(x_test)])
    z_train, z_test, z_angle = np.split(teacher.logits(kernel_fn, np.concatenate([x_train, x_test, x_angle])), sizes)
    y_train = (z_train > 0).astype(np.int64)
    diagonal = np.asarray(architecture.kernel_diagonal(np.concatenate([x_train, x_angle])))
    train_angles = feature_oracle_angles(z_train, diagonal[: len(x_train)], oracle_norm=teacher.oracle_norm)
    angles = feature_oracle_angles(z_angle, diagonal[len(x_train) :], oracle_norm=teacher.oracle_norm)
    targets = grid_targets(z_train, y_train, rho=rho_values, temperature=temperature)
    full = linearized.factorize_kernel(np.asarray(kernel_fn(x_train)))
    kernel_test_train = np.asarray(kernel_fn(x_test, x_train))
    records = _sweep_records(
        streams, full, targets, kernel_test_train, z_train, z_test, angles, train_angles, teacher.oracle_norm,
        n_values=n_values, rho_values=rho_values, temperature=temperature, input_dim=input_dim,
    )
    violation = max_margin_violation_share(full, y_train)
    return SweepResult(records, angles, class_balance(z_test > 0), teacher.oracle_norm, violation, teacher)


def _claim_r2(records: Sequence[Mapping[str, Any]], *, z_score: float = 3.0) -> dict[str, Any]:
    r"""R2 from records: :math:`R_n \le p(\pi/2 - \bar\alpha_n)` in every record, within Monte-Carlo error.

    Holds if every record satisfies ``transfer_risk <= bound + z_score * sqrt(se_risk² + se_bound²)`` (risk and p(β)
    come from independent samples, each with its binomial standard error). The evidence also says in how many
    records the bound is informative (< 1).
    """
    if not records:
        raise ValueError("records must not be empty")
    gaps = np.array([r["transfer_risk"] - r["bound"] for r in records])
    allowance = z_score * np.array([np.hypot(r["transfer_risk_standard_error"], r["bound_standard_error"]) for r in records])
    informative = sum(r["bound"] < 1 for r in records)
    cosines = [r["cos_alpha_n"] for r in records if "cos_alpha_n" in r]
    holds = bool(np.all(gaps <= allowance))
    evidence = (
        f"max(risk - bound) = {gaps.max():.4g} over {len(records)} records (allowed: {z_score:g} Monte-Carlo "
        f"standard errors); bound < 1 in {informative} of them"
    )
    if cosines:
        evidence += f"; smallest cos(alpha_n) = {min(cosines):.4g} (folded and unfolded angles agree where >= 0)"
    return claim(holds, evidence)


def _claim_r3(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    r"""R3 from records: the pure-soft student learns the projection :math:`P_\Phi\Delta w_*`, so :math:`\bar\alpha_n` shrinks.

    Holds if (a) in every ρ = 1 record :math:`\bar\alpha_n \le \min_{i \le n}\bar\alpha(\phi(x_i), \Delta w_*)` (a
    projection onto a span is at least as close as any single spanning vector), and (b) the mean over repetitions
    of :math:`\bar\alpha_n` at ρ = 1 decreases at every step of n. Both are exact properties, not estimates: the
    training sets are nested, and the projection onto a growing span can only come closer, in every repetition;
    only round-off (``1e-12``) is allowed.
    """
    soft = [r for r in records if r["rho"] == 1.0]
    if not soft:
        raise ValueError("records must contain rho = 1")
    margin = min(r["min_sample_angle"] - r["alpha_n"] for r in soft)
    means = seed_means(soft, ["n_train"], ["alpha_n"]).alpha_n_mean.to_numpy()
    decreasing = bool(np.all(np.diff(means) < 0))
    holds = margin >= -1e-12 and decreasing
    evidence = (
        f"min over {len(soft)} rho=1 records of (best single-sample angle - alpha_n) = {margin:.4g}; mean alpha_n "
        f"from {means[0]:.4g} to {means[-1]:.4g}, decreasing at every n: {decreasing}"
    )
    return claim(holds, evidence)


Z_SCORE = 2.0
"""R4: an estimate counts as positive when it exceeds ``Z_SCORE`` standard errors (one-sided, about 97.7%)."""


def _risks_at(records: Sequence[Mapping[str, Any]], n: int) -> dict[tuple[int, int], float]:
    return {(r["seed"], r.get("repetition", 0)): r["transfer_risk"] for r in records if r["n_train"] == n}


def _claim_r4(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    r"""R4 from records: pure soft labels (ρ = 1) beat hard labels (ρ = 0) at the largest n, and ᾱ_n converges faster.

    Holds if (a) at the largest n the paired difference risk(ρ = 0) − risk(ρ = 1) over repetitions is positive by
    :data:`Z_SCORE` standard errors (with a single repetition, the Monte-Carlo standard error of the two test-set
    risks stands in for the spread over repetitions), and (b) the log-log slope of :math:`\bar\alpha_n` against n
    (fitted over every repetition's values) is lower at ρ = 1 than at ρ = 0 by :data:`Z_SCORE` combined standard errors.
    """
    soft = [r for r in records if r["rho"] == 1.0]
    hard = [r for r in records if r["rho"] == 0.0]
    if not soft or not hard:
        raise ValueError("records must contain rho = 1 and rho = 0")
    largest = max(r["n_train"] for r in soft)
    try:
        gain = paired_difference(_risks_at(hard, largest), _risks_at(soft, largest))
    except ValueError:
        raise ValueError("rho = 1 and rho = 0 records must cover the same repetitions at the largest n") from None
    if gain.count == 1:
        errors = [r["transfer_risk_standard_error"] for r in (*soft, *hard) if r["n_train"] == largest]
        gain = gain._replace(standard_error=float(np.hypot(*errors)))
    fits = {
        name: loglog_fit([r["n_train"] for r in group], [r["alpha_n"] for r in group])
        for name, group in (("soft", soft), ("hard", hard))
    }
    slope_gap = fits["hard"].slope - fits["soft"].slope
    slope_error = float(np.hypot(fits["hard"].standard_error, fits["soft"].standard_error))
    holds = gain.lower(Z_SCORE) > 0 and slope_gap - Z_SCORE * slope_error > 0
    evidence = (
        f"at n = {largest}: risk(hard) - risk(rho=1) = {gain} (rule: > {Z_SCORE:g} SE); "
        f"log-log slope of alpha_n: {fits['soft'].slope:.3f} ± {fits['soft'].standard_error:.3f} (rho=1) vs "
        f"{fits['hard'].slope:.3f} ± {fits['hard'].standard_error:.3f} (hard): gap {slope_gap:.3f} ± {slope_error:.3f} "
        f"(rule: > {Z_SCORE:g} SE)"
    )
    return claim(holds, evidence)


def _claim_r5(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """R5 from records: the bound is never above Phuong & Lampert's (ρ = 1 records) and strictly below it somewhere.

    The evidence counts the records where either bound is vacuous (≥ 1).
    """
    soft = [r for r in records if r["rho"] == 1.0]
    if not soft:
        raise ValueError("records must contain rho = 1")
    ours = np.array([r["bound"] for r in soft])
    theirs = np.array([r["phuong_lampert_bound"] for r in soft])
    holds = bool(np.all(ours <= theirs) and np.any(ours < theirs))
    evidence = (
        f"bound <= Phuong-Lampert in {int(np.sum(ours <= theirs))}/{len(soft)} rho=1 records, strictly below in "
        f"{int(np.sum(ours < theirs))}; vacuous (>= 1): ours {int(np.sum(ours >= 1))}, theirs {int(np.sum(theirs >= 1))}"
    )
    return claim(holds, evidence)


def claims(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """R2–R5 from :func:`transfer_risk_sweep` records (rules in each part's docstring).

    Returns:
      ``{"R2": ..., "R3": ..., "R4": ..., "R5": ...}``, each ``{"holds", "evidence"}``.
    """
    return {"R2": _claim_r2(records), "R3": _claim_r3(records), "R4": _claim_r4(records), "R5": _claim_r5(records)}
