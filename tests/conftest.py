"""Markers of whole test files that cannot carry a module-level ``pytestmark`` here (their own owners edit them).

``make test-fast`` runs ``-m "not kernel and not browser and not grading and not slow"``; the markers are registered
in pyproject.toml (``--strict-markers``).
"""

from __future__ import annotations

import pytest

FILE_MARKERS = {
    "test_browser.py": ("browser",),
    "test_assignments.py": ("grading", "kernel"),
    "test_grading_redteam.py": ("grading", "kernel"),
    "test_pdf.py": ("browser",),
}
"""File name → markers of every test in it (a module-level ``pytestmark`` in those files would do the same)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker in FILE_MARKERS.get(item.path.name, ()):
            item.add_marker(marker)
