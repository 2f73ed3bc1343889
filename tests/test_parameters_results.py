"""Shared chapter parameters and the results-file format."""

import json

import numpy as np
import pytest

from kdwide.experiments import claim
from kdwide_book.parameters import resolve_profile, setup_chapter, validate_parameter, validate_parameters
from kdwide_book.results import JsonLinesLog, read_json_lines, read_results, to_jsonable, write_json, write_results


@pytest.mark.parametrize(
    "name, value",
    [("rho", 1.2), ("rho", float("nan")), ("rho_values", [0.5, -1]), ("temperature", 0), ("seed", -1), ("seed", 1.5),
     ("n_train", 0), ("profile", "gpu"), ("activation", "tanh"), ("results_path", 3), ("rho", True)],
)
def test_bad_values_name_the_parameter(name, value):
    with pytest.raises(ValueError, match=repr(name)):
        validate_parameter(name, value)


def test_good_values_pass_and_unknown_names_are_left_to_the_chapter():
    params = validate_parameters({"rho": 0.5, "temperature": 2, "seed": 0, "rho_values": [0, 1], "chapter_knob": "x"})
    assert params["chapter_knob"] == "x"


def test_profiles_fill_only_what_the_reader_did_not_set():
    profiles = {"ci": {"n_train": 64, "width": 128}, "paper": {"n_train": 4096, "width": 4096}}
    resolved = resolve_profile({"profile": "paper", "n_train": None, "width": 256}, profiles)
    assert resolved == {"profile": "paper", "n_train": 4096, "width": 256}
    with pytest.raises(ValueError, match="profile"):
        resolve_profile({"profile": "fast"}, profiles)


def test_results_file_round_trip_and_atomic_write(tmp_path):
    path = tmp_path / "sub" / "results.json"
    records = [{"rho": np.float64(0.5), "n_train": np.int64(8), "risk": np.array(0.25), "bad": float("inf")}]
    write_results(path, chapter="99_x", parameters={"rho": 0.5}, claims={"C1": claim(np.bool_(True), "x")}, records=records)
    document = read_results(path)
    assert document["claims"]["C1"] == {"holds": True, "evidence": "x"}
    assert document["records"] == [{"rho": 0.5, "n_train": 8, "risk": 0.25, "bad": None}]
    assert set(document["versions"]) == {"kdwide", "jax", "neural_tangents"}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temporary file left behind
    json.loads(path.read_text())


def test_claims_must_have_holds_and_evidence(tmp_path):
    with pytest.raises(ValueError, match="claims"):
        write_results(tmp_path / "r.json", chapter="x", parameters={}, claims={"C1": {"holds": True}}, records=[])


def test_the_one_json_writer_indents_by_one_and_writes_no_nan(tmp_path):
    path = write_json(tmp_path / "out" / "x.json", {"a": np.float64(float("nan")), "b": [np.int64(1)]})
    assert path.read_text() == '{\n "a": null,\n "b": [\n  1\n ]\n}\n'
    assert write_json(path, {"b": [1, 2]}, compact=True).read_text() == '{"b":[1,2]}\n'
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # replaced in place, no temporary file left


def test_json_lines_log_appends_and_skips_a_torn_line(tmp_path):
    log = JsonLinesLog(tmp_path / "log.jsonl")
    log.append({"n": np.int64(1)}, sync=True)
    log.close()
    with open(tmp_path / "log.jsonl", "ab") as handle:  # what a process killed mid-write leaves
        handle.write(b'{"n": 2')
    log = JsonLinesLog(tmp_path / "log.jsonl")
    log.append({"n": 3})
    log.close()
    assert list(read_json_lines(tmp_path / "log.jsonl")) == [{"n": 1}, {"n": 3}]
    assert list(read_json_lines(tmp_path / "missing.jsonl")) == []


def test_to_jsonable_handles_nested_arrays():
    assert to_jsonable({"a": np.arange(3), "b": (np.float32(1.5),)}) == {"a": [0, 1, 2], "b": [1.5]}


# --- the one rule table and the setup call ------------------------------------------------------------------------

CHAPTER_3 = dict(seed=0, n_seeds=None, n_values=[8, 16], rho_values=[1.0, 0.0], input_dims=[2, 3], remove_linear=True,
                 input_dim=3, n_anchors=20, teacher_rms_logit=3.0, finite_width_n_train=64, profile="ci",
                 results_path=None)
PROFILES_3 = {"ci": {"n_seeds": 2}, "paper": {"n_seeds": 10}}


def test_setup_fills_the_profile_and_writes_back_only_parameters():
    namespace = dict(CHAPTER_3, plt="a module", helper=3)
    parameters = setup_chapter(namespace, chapter="03_risk_bound", profiles=PROFILES_3)
    assert list(parameters) == list(CHAPTER_3) and parameters["n_seeds"] == 2
    assert namespace["n_seeds"] == 2 and namespace["helper"] == 3
    assert "seeds" not in namespace  # repetitions come from Streams(seed).repetitions(n_seeds), in the chapter
    paper = setup_chapter(dict(CHAPTER_3, profile="paper", seed=5), chapter="03_risk_bound", profiles=PROFILES_3)
    assert paper["n_seeds"] == 10


@pytest.mark.parametrize(("name", "value"), [
    ("rho_values", [1.0, 0.5]), ("n_values", [16, 8]), ("input_dims", [1]), ("n_anchors", 4),
    ("teacher_rms_logit", -1.0), ("remove_linear", "yes"), ("finite_width_n_train", 0), ("n_seeds", 0),
    ("seed", -1), ("profile", "gpu"),
])
def test_setup_names_the_bad_parameter(name, value):
    with pytest.raises(ValueError, match=f"'{name}'"):
        setup_chapter(dict(CHAPTER_3, **{name: value}), chapter="03_risk_bound", profiles=PROFILES_3)


@pytest.mark.parametrize(("name", "value"), [
    ("frequencies", []), ("stopping_times", [0.0]), ("n_candidates", 0), ("n_teacher", 1.5), ("frequency", -1),
    ("teacher_peak_logit", float("inf")), ("teacher_target_logit", 0.0), ("corruption_scales", [-1.0]), ("teacher_sizes", [0]), ("n_student", 0),
    ("significance", float("nan")), ("flat_tolerance", -0.1), ("dataset", "cifar"), ("positive_classes", [10]),
])
def test_every_chapter_parameter_has_a_rule(name, value):
    with pytest.raises(ValueError, match=f"'{name}'"):
        validate_parameter(name, value)


def test_chapter_relations():
    five = dict(rho_values=[0.5, 1.0], profile="ci", results_path=None)
    with pytest.raises(ValueError, match="'rho_values'.*0.0"):
        setup_chapter(five, chapter="05_imperfect_teacher", profiles={"ci": {}, "paper": {}})
    two = dict(rho_values=[1.0, 0.5], widths=[64, 256], n_anchors=9, input_dim=8, profile="ci", results_path=None)
    with pytest.raises(ValueError, match="'n_anchors'"):
        setup_chapter(two, chapter="02_linearization", profiles={"ci": {}, "paper": {}})
    with pytest.raises(ValueError, match="'widths'.*two different widths"):
        setup_chapter(dict(two, widths=[64, 64], n_anchors=10), chapter="02_linearization", profiles={"ci": {}, "paper": {}})
    with pytest.raises(ValueError, match="'rho_values'.*R4"):
        setup_chapter(dict(five, rho_values=[0.0, 0.5]), chapter="06_landscape", profiles={"ci": {}, "paper": {}})
    with pytest.raises(ValueError, match="profiles"):
        setup_chapter(dict(two, n_anchors=10), chapter="02_linearization", profiles={"ci": {}})
