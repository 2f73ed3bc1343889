"""The ``Example:`` blocks of the public entry points run and print what they say (doctest)."""

from __future__ import annotations

import doctest
import importlib

import pytest

import kdwide  # noqa: F401  (float64)

MODULES = ["kdwide.effective_logit", "kdwide.softmax_effective_logits", "kdwide.losses", "kdwide.kernels", "kdwide.networks", "kdwide.predict",
           "kdwide.tasks", "kdwide.stats", "kdwide.metrics", "kdwide.experiments", "kdwide.experiments.discontinuity",
           "kdwide.reference", "kdwide.seeds", "kdwide.architecture", "kdwide.experiments.linearization",
           "kdwide.experiments.task_difficulty", "kdwide.experiments.landscape", "kdwide.experiments.multiclass", "kdwide_book.tables", "kdwide_book.plots",
           "kdwide_book.robustness", "kdwide_book.paper_scale", "kdwide_book.sphinx_extension", "kdwide_book.explorers",
           "kdwide_book.runner", "kdwide_book.paper", "kdwide_book.results", "kdwide_book.judge",
           "kdwide_book.graded_questions"]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name: str) -> None:
    module = importlib.import_module(name)
    failures, attempted = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0, f"{name} has no Example"
    assert failures == 0, f"{name}: {failures} of {attempted} examples failed"
