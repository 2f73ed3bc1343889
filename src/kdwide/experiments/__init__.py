r"""The book's experiments: one module per chapter, each producing tidy records and deciding its claims.

Layers. :mod:`kdwide` (core: loss, effective logit, networks, kernels, converged students, training, tasks,
metrics, statistics) ← :mod:`kdwide.experiments` (this package) ← the chapters and :mod:`kdwide_book` (tooling:
parameters, results files, execution, sweeps, the Sphinx extension, assignments). Imports run that way only:
core never imports an experiment, experiments never import each other or the tooling (tests check both).

Every module has ``claims(records, ...) -> {claim_id: {"holds": bool, "evidence": str}}``: the one place where its
claims are decided, with each threshold a named module constant.

- :mod:`~kdwide.experiments.discontinuity`: chapter 1, C1 (effective logits jump at label changes).
- :mod:`~kdwide.experiments.linearization`: chapter 2, C2 (trained networks approach their linearization).
- :mod:`~kdwide.experiments.risk_bound`: chapter 3, R2–R5 (transfer risk bound).
- :mod:`~kdwide.experiments.task_difficulty`: chapter 4, D1–D3 (data inefficiency).
- :mod:`~kdwide.experiments.imperfect_teacher`: chapter 5, I1–I3 (imperfect teachers).
- :mod:`~kdwide.experiments.landscape`: chapter 6, R4, D3, I1 over the ρ×T plane.
- :mod:`~kdwide.experiments.multiclass`: chapter 7, M1–M4 (K classes; the book's own, beyond the paper).
"""

from __future__ import annotations

from typing import Any

__all__ = ["claim", "percent"]


def claim(holds: bool, evidence: str) -> dict[str, Any]:
    """One claim entry: ``holds`` must be computed from data, ``evidence`` says from what.

    Example:
      >>> claim(0.2 < 0.5, "risk 0.2 below 0.5")
      {'holds': True, 'evidence': 'risk 0.2 below 0.5'}
    """
    return {"holds": bool(holds), "evidence": str(evidence)}


def percent(value: float) -> str:
    """A share as claims' evidence prints it: percent, 3 significant digits.

    Example:
      >>> percent(0.01234)
      '1.23%'
    """
    return f"{100 * value:.3g}%"
