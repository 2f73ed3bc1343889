"""make robustness: hold rates from sweep folders, with Wilson intervals (no chapter is executed here)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kdwide.stats import wilson_interval
from kdwide_book import robustness


def _point(root, chapter, seed, claims):
    folder = root / chapter / "points" / f"seed-{seed}"
    folder.mkdir(parents=True)
    claims = {name: {"holds": holds, "evidence": f"{name} at seed {seed}"} for name, holds in claims.items()}
    (folder / "results.json").write_text(json.dumps({"chapter": chapter, "parameters": {"seed": seed},
                                                     "claims": claims, "records": []}))


def test_collect_writes_hold_rates_with_intervals(tmp_path):
    for seed in range(20):
        _point(tmp_path / "runs", "03_risk_bound", seed, {"R2": True, "R4": seed != 7})
    _point(tmp_path / "runs", "01_effective_logit", 3, {"C1": True})
    claims = robustness.collect(tmp_path / "runs", tmp_path / "data")
    by_claim = claims.set_index("claim")
    assert by_claim.loc["R2", "holds"] == 20 and by_claim.loc["R2", "hold_rate"] == 1.0
    assert by_claim.loc["R4", "holds"] == 19 and not by_claim.loc["R4", "below_target"]
    assert by_claim.loc["R4", "interval_low"] == pytest.approx(wilson_interval(19, 20)[0])
    assert by_claim.loc["C1", "runs"] == 1
    runs = pd.read_csv(tmp_path / "data" / "robustness_runs.csv")
    assert len(runs) == 41 and runs[runs.holds == False].evidence.tolist() == ["R4 at seed 7"]  # noqa: E712
    assert pd.read_csv(tmp_path / "data" / "robustness_claims.csv").shape[0] == 3


def test_a_claim_below_target_is_flagged_and_no_runs_is_an_error(tmp_path):
    for seed in range(10):
        _point(tmp_path, "05_imperfect_teacher", seed, {"I1": seed < 8})
    table = robustness.claim_table(robustness.run_table(tmp_path))
    assert table.hold_rate.item() == 0.8 and table.below_target.item()
    with pytest.raises(ValueError, match="no results"):
        robustness.run_table(tmp_path / "empty")


def test_wilson_interval():
    low, high = wilson_interval(10, 20)
    assert low < 0.5 < high and high - low == pytest.approx(0.4, abs=0.03)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    for bad in [(21, 20), (-1, 20), (1, 0), (True, 2)]:
        with pytest.raises(ValueError):
            wilson_interval(*bad)
