"""Speed of `kdwide.kernels`: the structured empirical NTK against the generic Jacobian contraction
(`method="jacobian_contraction"`, neural-tangents' JACOBIAN_CONTRACTION algorithm written in JAX), and the analytic
NTK and its Cholesky factorization at n = 4000. Runs in both environments (no neural-tangents needed).

Target case: 2 hidden layers, width 1024, ReLU, n = 1024 inputs, float64; target <= 1 s on 2 CPU cores.
The generic reference is measured in the same run on a smaller n (default 128; it keeps every
per-sample Jacobian, ~1M parameters x n x 8 bytes) together with the structured method on the same inputs,
and the ratio is reported there; its time at the target n is then extrapolated linearly, t(n_ref) * n / n_ref,
a lower bound (its per-sample Jacobians cost grows linearly in n, its n x n contraction quadratically), and
printed as an extrapolation. Pass --reference-n 1024 to measure it
directly (about a minute and ~9 GB of memory). Each time is the best of --repeats runs after one
compile-and-warm-up call.

Run: .venv/bin/python benchmarks/kernels.py [--n 1024] [--width 1024] [--reference-n 128] [--n-analytic 4000]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import kdwide  # noqa: F401  (float64)
from kdwide.kernels import JACOBIAN_CONTRACTION, analytic_ntk, empirical_ntk
from kdwide.linearized import factorize_kernel
from kdwide.networks import fully_connected_network

ARCHITECTURE = dict(activation="relu", w_std=1.4, b_std=0.1)


def best_time(function, repeats: int) -> float:
    jax.block_until_ready(function())  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function())
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--input-dim", type=int, default=10)
    parser.add_argument("--reference-n", type=int, default=128)
    parser.add_argument("--n-analytic", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.input_dim))
    init_fn, apply_fn, _ = fully_connected_network(depth=args.depth, width=args.width, **ARCHITECTURE)
    _, params = init_fn(jax.random.PRNGKey(0), x.shape)

    structured = best_time(lambda: empirical_ntk(apply_fn, params, x, **ARCHITECTURE), args.repeats)
    print(f"empirical NTK, structured: depth {args.depth}, width {args.width}, n {args.n}, float64: "
          f"{structured:.3f} s (target <= 1 s) {'OK' if structured <= 1.0 else 'SLOWER THAN TARGET'}")

    x_ref = x[: args.reference_n]
    structured_ref = best_time(lambda: empirical_ntk(apply_fn, params, x_ref, **ARCHITECTURE), args.repeats)
    reference = best_time(
        lambda: empirical_ntk(apply_fn, params, x_ref, method=JACOBIAN_CONTRACTION, **ARCHITECTURE), 1
    )
    agreement = float(np.max(np.abs(
        np.asarray(empirical_ntk(apply_fn, params, x_ref, **ARCHITECTURE))
        - np.asarray(empirical_ntk(apply_fn, params, x_ref, method=JACOBIAN_CONTRACTION, **ARCHITECTURE))
    )))
    print(f"at n = {args.reference_n} (same run): JACOBIAN_CONTRACTION {reference:.3f} s, structured "
          f"{structured_ref:.4f} s, ratio {reference / structured_ref:.0f}x, max |difference| {agreement:.2e}")
    if args.reference_n == args.n:
        print(f"ratio at the target n (measured): {reference / structured:.0f}x")
    else:
        extrapolated = reference * args.n / args.reference_n
        print(f"JACOBIAN_CONTRACTION at n = {args.n} EXTRAPOLATED (linear in n, a lower bound): "
              f">= {extrapolated:.1f} s, ratio to structured (measured at n = {args.n}) "
              f">= {extrapolated / structured:.0f}x")

    x_big = rng.normal(size=(args.n_analytic, args.input_dim))
    analytic = best_time(lambda: analytic_ntk(x_big, depth=args.depth, **ARCHITECTURE), args.repeats)
    kernel = analytic_ntk(x_big, depth=args.depth, **ARCHITECTURE)
    cholesky = best_time(lambda: factorize_kernel(kernel).cholesky, args.repeats)
    print(f"analytic NTK, n = {args.n_analytic}: {analytic:.3f} s; Cholesky (factorize_kernel, with checks): "
          f"{cholesky:.3f} s")


if __name__ == "__main__":
    main()
