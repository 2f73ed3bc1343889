"""The student's architecture as one value: depth, activation and the weight and bias scales.

Every experiment and chapter passes an :class:`Architecture` where it needs a network or its kernels, instead of
the four keywords ``depth, activation, w_std, b_std`` one by one; records carry its fields
(:meth:`Architecture.record`). The width is not part of it: the analytic kernels are those of infinite width,
and finite networks take their width where they are built (:meth:`Architecture.network`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kdwide.kernels import analytic_nngp, analytic_ntk, analytic_ntk_diagonal, empirical_ntk
from kdwide.networks import fully_connected_network
from kdwide.validation import check_architecture

__all__ = ["Architecture"]


@dataclass(frozen=True, kw_only=True)
class Architecture:
    r"""A fully connected NTK-parameterized network: ``depth`` hidden layers, ``activation``, :math:`\sigma_W`,
    :math:`\sigma_b` (validated on construction; ``ValueError`` naming the bad field).

    Attributes:
      depth: hidden layers, an integer ≥ 1.
      activation: ``"relu"`` or ``"erf"``.
      w_std: :math:`\sigma_W`, finite and > 0.
      b_std: :math:`\sigma_b`, finite and ≥ 0.

    Example:
      >>> import numpy as np
      >>> from kdwide.seeds import Streams
      >>> architecture = Architecture(depth=1, activation="relu", w_std=1.4, b_std=0.1)
      >>> x = Streams(0).rng("example").normal(size=(4, 3))
      >>> architecture.kernel(x).shape, architecture.kernel_diagonal(x).shape
      ((4, 4), (4,))
      >>> init_fn, apply_fn = architecture.network(width=64)
      >>> _, params = init_fn(Streams(0).key("network"), x.shape)
      >>> apply_fn(params, x).shape
      (4, 1)
    """

    depth: int
    activation: str
    w_std: float
    b_std: float

    def __post_init__(self) -> None:
        checked = check_architecture(depth=self.depth, activation=self.activation, w_std=self.w_std, b_std=self.b_std)
        for field, value in zip(("depth", "activation", "w_std", "b_std"), checked):
            object.__setattr__(self, field, value)

    def record(self) -> dict[str, Any]:
        """The fields as a dict (``depth, activation, w_std, b_std``): keyword arguments and record columns."""
        return {"depth": self.depth, "activation": self.activation, "w_std": self.w_std, "b_std": self.b_std}

    @property
    def kernel(self) -> Callable[..., Any]:
        """The analytic NTK, ``kernel(x1, x2=None) -> (n1, n2)`` (:func:`kdwide.kernels.analytic_ntk`)."""
        return functools.partial(analytic_ntk, **self.record())

    @property
    def kernel_diagonal(self) -> Callable[..., Any]:
        """The analytic NTK's exact diagonal, ``kernel_diagonal(x) -> (n,)``."""
        return functools.partial(analytic_ntk_diagonal, **self.record())

    @property
    def nngp_kernel(self) -> Callable[..., Any]:
        """The analytic NNGP kernel, ``nngp_kernel(x1, x2=None) -> (n1, n2)``."""
        return functools.partial(analytic_nngp, **self.record())

    def empirical_kernel(self, apply_fn: Callable[..., Any], params: Any, x1: Any, x2: Any = None) -> Any:
        """The empirical NTK of a network of this architecture at ``params`` (:func:`kdwide.kernels.empirical_ntk`)."""
        return empirical_ntk(apply_fn, params, x1, x2, activation=self.activation, w_std=self.w_std, b_std=self.b_std)

    def network(self, *, width: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """A finite network of this architecture, ``(init_fn, apply_fn)`` (:func:`kdwide.networks.fully_connected_network`)."""
        init_fn, apply_fn, _ = fully_connected_network(width=width, **self.record())
        return init_fn, apply_fn
