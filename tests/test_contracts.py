"""The library's contracts, checked on the source: one way to draw (kdwide.seeds.Streams), one architecture value,
one grouping, short functions, no private imports across modules.

These scan ``src/`` with :mod:`ast` (docstrings and comments do not count), so each rule fails on the first
violation that anybody adds; each rule also has a test that shows it catching a planted violation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kdwide  # noqa: F401  (float64)
from kdwide import stats
from kdwide.architecture import Architecture
from kdwide.seeds import Streams, check_seed

SOURCE = Path(__file__).resolve().parents[1] / "src"
SEEDS_MODULE = SOURCE / "kdwide" / "seeds.py"
MAX_FUNCTION_LINES = 80
ARCHITECTURE_FIELDS = {"depth", "activation", "w_std", "b_std"}


def _modules() -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*.py") if "egg-info" not in str(p))


def _name(node: ast.AST) -> str:
    """The dotted name of a call's function or an operand (``np.random.default_rng``, ``seed``), or ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    return ""


def random_draw_violations(text: str) -> list[str]:
    """Calls that derive random draws outside the stream object, and arithmetic on seeds."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name.split(".")[-1] in {"default_rng", "PRNGKey", "SeedSequence", "RandomState"} or name in {
                "jax.random.key", "random.key", "np.random.seed", "numpy.random.seed"}:
                found.append(f"line {node.lineno}: {name}(...)")
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.BitXor, ast.Mod)):
            for side in (node.left, node.right):
                if "seed" in _name(side).split(".")[-1].lower():
                    found.append(f"line {node.lineno}: arithmetic on {_name(side)}")
    return found


def test_only_the_stream_object_derives_random_draws():
    violations = {
        str(path.relative_to(SOURCE)): found
        for path in _modules() if path != SEEDS_MODULE and (found := random_draw_violations(path.read_text()))
    }
    assert not violations, f"random draws outside kdwide.seeds.Streams: {violations}"


@pytest.mark.parametrize("text", [
    "import numpy as np\nx = np.random.default_rng(3).normal()",
    "import jax\nkey = jax.random.PRNGKey(0)",
    "def f(seed):\n    return g(seed + 1)",
    "def f(seeds, k):\n    return seeds[0] * 7 + k",
])
def test_the_random_draw_scan_catches_violations(text):
    assert random_draw_violations(text)


def long_functions(text: str, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    return [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit
    ]


def test_no_function_is_longer_than_80_lines():
    violations = {str(p.relative_to(SOURCE)): found for p in _modules() if (found := long_functions(p.read_text()))}
    assert not violations, violations
    assert long_functions("def f():\n" + "    x = 1\n" * 90)  # the scan itself


def architecture_keyword_violations(text: str) -> list[str]:
    """Functions that take depth, activation, w_std and b_std one by one (they take an Architecture)."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = {a.arg for a in (*node.args.args, *node.args.kwonlyargs)}
            if ARCHITECTURE_FIELDS <= arguments:
                found.append(node.name)
    return found


def test_no_records_function_takes_the_architecture_keywords_one_by_one():
    experiments = sorted((SOURCE / "kdwide" / "experiments").glob("*.py"))
    violations = {p.name: found for p in experiments if (found := architecture_keyword_violations(p.read_text()))}
    assert not violations, violations
    assert architecture_keyword_violations("def records(*, depth, activation, w_std, b_std, seed): ...")


def private_imports(text: str) -> list[str]:
    """``from kdwide... import _name``: private names used across modules."""
    return [
        f"{node.module}.{alias.name}"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kdwide")
        for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")
    ]


def test_no_private_imports_across_modules():
    violations = {str(p.relative_to(SOURCE)): found for p in _modules() if (found := private_imports(p.read_text()))}
    assert not violations, violations
    assert private_imports("from kdwide.linearized import _COSINE_SLACK")


# --- the stream object ------------------------------------------------------------------------------------------------


def test_streams_are_named_repeatable_and_independent():
    streams = Streams(5)
    np.testing.assert_array_equal(streams.rng("train").random(5), Streams(5).rng("train").random(5))
    assert not np.allclose(streams.rng("train").random(5), streams.rng("test").random(5))
    assert not np.allclose(streams.rng("train").random(5), Streams(6).rng("train").random(5))
    assert np.array_equal(streams.key("network"), Streams(5).key("network"))
    assert not np.array_equal(streams.key("network"), streams.key("other"))
    assert streams.child("teacher") == Streams(5, ("teacher",))
    assert streams.child("teacher").rng("anchors").random() != streams.rng("anchors").random()


def test_repetitions_never_overlap_across_seeds():
    # The old convention (repetitions seed, seed + 1, ...) made seed 0's second repetition seed 1's first.
    draws = {(seed, k): Streams(seed).repetition(k).rng("train").random() for seed in range(4) for k in range(3)}
    assert len(set(draws.values())) == len(draws)
    repetitions = Streams(2).repetitions(3)
    assert [r.index for r in repetitions] == [0, 1, 2]
    assert repetitions[1].record() == {"seed": 2, "repetition": 1}
    assert Streams(2).record() == {"seed": 2} and Streams(2).index is None
    assert repetitions[1].child("teacher").index == 1


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_seeds_are_checked_in_one_place(bad):
    with pytest.raises(ValueError, match="seed"):
        Streams(bad)
    with pytest.raises(ValueError, match="seed"):
        check_seed(bad)


def test_stream_names_and_counts_are_checked():
    with pytest.raises(ValueError, match="n_seeds"):
        Streams(0).repetitions(0)
    with pytest.raises(ValueError, match="name"):
        Streams(0).rng("")
    with pytest.raises(ValueError, match="name"):
        Streams(0).child(3)
    assert 0 <= Streams(0).integer("sklearn") < 2**32


# --- the architecture value and the grouping ----------------------------------------------------------------------------


def test_architecture_is_validated_and_builds_kernels_and_networks():
    architecture = Architecture(depth=2, activation="erf", w_std=np.float32(1.5), b_std=0)
    assert architecture.record() == {"depth": 2, "activation": "erf", "w_std": 1.5, "b_std": 0.0}
    x = Streams(0).rng("x").normal(size=(5, 3))
    np.testing.assert_allclose(np.diag(np.asarray(architecture.kernel(x))), architecture.kernel_diagonal(x), rtol=1e-12)
    init_fn, apply_fn = architecture.network(width=8)
    _, params = init_fn(Streams(0).key("network"), x.shape)
    assert apply_fn(params, x).shape == (5, 1)
    assert architecture.empirical_kernel(apply_fn, params, x).shape == (5, 5)
    for field, value in [("depth", 0), ("activation", "tanh"), ("w_std", 0.0), ("b_std", -1.0)]:
        with pytest.raises(ValueError, match=field):
            Architecture(**{**architecture.record(), field: value})


def test_seed_means_groups_and_reports_spread():
    rows = [dict(rho=r, n=n, risk=v) for r, n, v in [(1.0, 8, 0.1), (1.0, 8, 0.3), (0.0, 8, 0.5), (0.0, 8, 0.7)]]
    table = stats.seed_means(rows, ["rho", "n"], ["risk"], statistics=["mean", "standard_error", "min", "max"])
    assert list(table.rho) == [0.0, 1.0] and list(table["count"]) == [2, 2]
    np.testing.assert_allclose(table.risk_mean, [0.6, 0.2])
    np.testing.assert_allclose(table.risk_standard_error, [0.1, 0.1])
    np.testing.assert_allclose(table.risk_min, [0.5, 0.1])
    assert stats.seed_means(pd.DataFrame(rows), ["rho"], ["risk"]).shape == (2, 4)
    with pytest.raises(ValueError, match="missing"):
        stats.seed_means(rows, ["temperature"], ["risk"])
    with pytest.raises(ValueError, match="statistics"):
        stats.seed_means(rows, ["rho"], ["risk"], statistics=["median"])


def test_slope_and_paired_difference_carry_their_errors():
    widths = np.repeat([64.0, 256.0, 1024.0], 2)
    noisy = widths**-0.5 * np.exp(np.tile([0.05, -0.05], 3))
    fit = stats.loglog_fit(widths, noisy)
    assert fit.slope == pytest.approx(-0.5) and 0 < fit.standard_error < 0.05 and fit.upper() < 0
    flat = stats.loglog_fit(widths, np.exp(np.tile([0.5, -0.5], 3)))
    assert flat.upper() > 0  # no trend: the claim rule `upper < 0` fails
    gain = stats.paired_difference({0: 0.3, 1: 0.5, 2: 0.4}, {0: 0.1, 1: 0.2, 2: 0.2})
    assert gain.mean == pytest.approx(0.2333333) and gain.lower() > 0 and gain.count == 3
    with pytest.raises(ValueError, match="same"):
        stats.paired_difference({0: 1.0}, {1: 1.0})
