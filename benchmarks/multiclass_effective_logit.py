"""Speed of `kdwide.effective_logits` (K classes) against per-point `scipy.optimize.root`.

Solves N points × K classes in one vectorized call and a subset with scipy.optimize.root (hybr), one call per
point on the naive K − 1 equations in the gauge z_y = 0 (its per-point cost is measured on the subset and
reported per point). Our time is the best of ``--repeats`` calls after one compiling call. Prints the per-point
speed-up and the worst relative stationarity residual of our roots. Target: >= 1000x at N = 10^6, K = 10.

Run: .venv/bin/python benchmarks/multiclass_effective_logit.py [--n 1000000] [--classes 10] [--subset 200]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from scipy.optimize import root

import kdwide
from kdwide import effective_logits, softmax_stationarity_residual


def scipy_point(teacher, label, rho, temperature):
    others = np.arange(len(teacher)) != label
    softmax = lambda v: np.exp(v - v.max()) / np.exp(v - v.max()).sum()  # noqa: E731
    q = softmax(teacher / temperature)

    def equations(free):
        z = np.zeros(len(teacher))
        z[others] = free
        return (rho / temperature * (softmax(z / temperature) - q) + (1 - rho) * softmax(z))[others]

    return root(equations, np.zeros(len(teacher) - 1), method="hybr", options={"xtol": 1e-13}).x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--subset", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    teacher = rng.uniform(-10, 10, (args.n, args.classes))
    labels = rng.integers(0, args.classes, args.n)
    rho = 10 ** rng.uniform(-3, 0, args.n)
    temperature = 10 ** rng.uniform(-0.5, 1, args.n)

    effective_logits(teacher, labels, rho=rho, temperature=temperature).block_until_ready()  # compile
    timings = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        z = np.asarray(effective_logits(teacher, labels, rho=rho, temperature=temperature).block_until_ready())
        timings.append(time.perf_counter() - start)
    ours = min(timings) / args.n
    residual = np.asarray(softmax_stationarity_residual(z, teacher, labels, rho=rho, temperature=temperature))
    q = np.asarray(jax.nn.softmax(teacher / temperature[:, None], axis=-1))
    others = np.arange(args.classes) != labels[:, None]
    relative = np.abs(residual[others]) / (rho[:, None] / temperature[:, None] * q)[others]

    start = time.perf_counter()
    for i in range(args.subset):
        scipy_point(teacher[i], labels[i], rho[i], temperature[i])
    theirs = (time.perf_counter() - start) / args.subset

    print(f"kdwide {kdwide.__version__}, jax {jax.__version__}: {args.n} points x {args.classes} classes in "
          f"{ours * args.n:.3f} s ({ours * 1e6:.2f} us per point)")
    print(f"scipy.optimize.root per point: {theirs * 1e6:.0f} us (on {args.subset} points)")
    print(f"speed-up per point: {theirs / ours:.0f}x (target >= 1000x)")
    print(f"worst relative stationarity residual: {relative.max():.3g}")


if __name__ == "__main__":
    main()
