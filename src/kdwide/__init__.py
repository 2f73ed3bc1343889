"""kdwide: knowledge distillation in wide neural networks (Ji & Zhu, NeurIPS 2020), executable.

Importing :mod:`kdwide` turns on JAX's float64 mode (``jax_enable_x64``): kernel solves and root
finding need it. It imports neither neural-tangents nor TensorFlow (a test checks ``sys.modules``); it needs
jax, numpy and scipy, runs on jax 0.5.3 up to current releases, on CPUs and GPUs. One module per concept
of the paper:

- :mod:`kdwide.losses`: the KD loss (S1).
- :mod:`kdwide.effective_logit`: the effective student logit (C1) and its exact derivatives.
- :mod:`kdwide.softmax_effective_logits`: effective logits for K classes (softmax; the book's extension, chapter 7).
- :mod:`kdwide.networks`: fully connected students/teachers in NTK parameterization (S2), in plain JAX.
- :mod:`kdwide.reference`: the same networks and kernels in neural-tangents, compared where it is installed
  (the only module that imports it, and only when called).
- :mod:`kdwide.seeds`: :class:`~kdwide.seeds.Streams`, the one way to turn a seed into random draws (named streams,
  repetitions).
- :mod:`kdwide.architecture`: :class:`~kdwide.architecture.Architecture`, the network's depth, activation and scales
  as one value, with its kernels and networks.
- :mod:`kdwide.kernels`: analytic (infinite-width) and empirical (finite-width) tangent kernels.
- :mod:`kdwide.linearized`: the converged linearized student through kernel algebra (C2).
- :mod:`kdwide.training`: full-batch gradient descent on the KD loss for a finite network (C2).
- :mod:`kdwide.predict`: converged students for any targets (one solve), and a whole ρ×T grid on one factorization.
- :mod:`kdwide.tasks`: inputs, teachers and labels (generated).
- :mod:`kdwide.metrics`: measurements on logits and weight changes.
- :mod:`kdwide.experiments.risk_bound`: Result 1, the transfer risk bound (R1–R5): oracle angle, p(β), hard-label limit.
- :mod:`kdwide.data_inefficiency`: Result 2's metric (D1): closed-form one-sample weight change, I(n).
- :mod:`kdwide.experiments.task_difficulty`: Result 2's experiments (D2, D3): frequency tasks, early-stopped teachers, ρ×T grid.
- :mod:`kdwide.experiments.imperfect_teacher`: Result 3, imperfect teachers (I1–I3): flip ratio, slope of cos α, best ρ.
- :mod:`kdwide.datasets`: real data (bundled digits; MNIST from local files), never downloaded.
- :mod:`kdwide.experiments.landscape`: Results 1–3 over the ρ×T plane (chapter 6).
- :mod:`kdwide.experiments.multiclass`: K-class distillation, claims M1–M4 (chapter 7, beyond the paper).
The book's tooling (chapter parameters, results files, execution, sweeps, paper runs, the Sphinx extensions and the
course assignments) is the separate package :mod:`kdwide_book`, which imports this one and never the other way round.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

from kdwide.effective_logit import (  # noqa: E402
    effective_logit,
    effective_logit_rho_derivative,
    stationarity_residual,
    student_targets,
)
from kdwide.softmax_effective_logits import (  # noqa: E402
    effective_logits,
    effective_logits_rho_derivative,
    softmax_stationarity_residual,
)
from kdwide.losses import (  # noqa: E402
    binary_cross_entropy_with_logits,
    kd_loss,
    kd_loss_gradient,
    kd_loss_per_sample,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "binary_cross_entropy_with_logits",
    "effective_logit",
    "effective_logit_rho_derivative",
    "effective_logits",
    "effective_logits_rho_derivative",
    "kd_loss",
    "kd_loss_gradient",
    "kd_loss_per_sample",
    "softmax_stationarity_residual",
    "stationarity_residual",
    "student_targets",
]
