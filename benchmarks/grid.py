"""The ρ×T grid path against independent solves.

A 45-point grid (9 soft ratios × 5 temperatures) at n = 2000 training points: `kdwide.predict.solve_grid`
(one Cholesky factorization, 45 right-hand sides) against 45 independent solves (one dense solve of
Θ(X, X) per grid point, the loop a user would write). Both are timed in this run on the same kernel.
Target: ratio >= 10x.

Run: .venv/bin/python benchmarks/grid.py [--n 2000]
"""

from __future__ import annotations

import argparse
import time

import jax.numpy as jnp
import numpy as np

import kdwide
from kdwide import effective_logit, tasks
from kdwide.kernels import analytic_ntk
from kdwide.predict import solve_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=500)
    args = parser.parse_args()
    architecture = dict(depth=2, activation="relu", w_std=1.5, b_std=0.1)
    x = tasks.sphere_inputs(0, args.n + args.n_test, 8)
    kernel = np.asarray(analytic_ntk(x, **architecture))
    k_train, k_test = kernel[: args.n, : args.n], kernel[args.n :, : args.n]
    anchors = tasks.sphere_inputs(1, 64, 8)
    coefficients = tasks.centred_coefficients(2, anchors)
    z_teacher = 5 * tasks.kernel_expansion_logits(lambda a, b: analytic_ntk(a, b, **architecture), x[: args.n], anchors, coefficients)
    y_hard = (z_teacher > 0).astype(int)
    rho_values = np.linspace(0.1, 1.0, 9)
    temperature_values = [0.5, 1.0, 2.0, 4.0, 8.0]

    def grid_path():
        return solve_grid(k_train, k_test, z_teacher, y_hard, rho_values=rho_values, temperature_values=temperature_values)

    def independent_solves():
        outputs = []
        for rho in rho_values:
            for temperature in temperature_values:
                target = effective_logit(z_teacher, y_hard, rho=rho, temperature=temperature)
                outputs.append(np.asarray(jnp.asarray(k_test) @ jnp.linalg.solve(jnp.asarray(k_train), target)))
        return np.stack(outputs, axis=1)

    grid_path(), independent_solves()  # compile both paths for these shapes
    start = time.perf_counter()
    fast = grid_path()
    fast_time = time.perf_counter() - start
    start = time.perf_counter()
    slow = independent_solves()
    slow_time = time.perf_counter() - start
    difference = np.max(np.abs(fast.test_outputs - slow)) / np.max(np.abs(slow))
    print(f"kdwide {kdwide.__version__}: 45-point rho x T grid, n = {args.n}, {args.n_test} test points")
    print(f"grid path (one factorization): {fast_time:.3f} s")
    print(f"45 independent solves:         {slow_time:.3f} s")
    print(f"ratio: {slow_time / fast_time:.1f}x (target >= 10x); largest relative difference {difference:.2g}")


if __name__ == "__main__":
    main()
