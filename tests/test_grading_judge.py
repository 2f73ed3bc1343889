"""The judge's parts, without a kernel: question specifications against the chapters, the producer's refusals and
blocking (run in this process's namespace, as the kernel would), strict parsing, comparison, feedback, signed reports,
and the process protections (non-dumpable, subreaper: every descendant killed)."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest

from kdwide_book import judge
from kdwide_book.assignments import questions
from kdwide_book.book import chapter_notebooks
from kdwide_book.graded_questions import HARD_LIMIT_DEFAULTS, SPECS, Check, spec_for

pytestmark = pytest.mark.grading
ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = chapter_notebooks(ROOT)


def all_questions():
    return [(path, q) for path in CHAPTERS for q in questions(nbformat.read(path, as_version=4))]


# ------------------------------------------------------------------------------------------ specs and chapters
def test_every_graded_question_has_a_spec_and_names_what_it_asks() -> None:
    found = all_questions()
    assert {q.name for _, q in found} == set(SPECS), "one judge specification per graded question"
    for path, question in found:
        code = "\n".join(question.solution_cells)
        if question.answer:
            assert f"def {question.answer}(" in code, f"{path}: {question.name} answers {question.answer}"
        for name in question.variables:
            assert re.search(rf"^{name}\s*=", code, flags=re.MULTILINE), f"{path}: {question.name} sets {name}"
        for dotted in question.writes:
            module, _, attribute = dotted.rpartition(".")
            assert callable(getattr(importlib.import_module(module), attribute)), f"{path}: {dotted} is no function"
        public, hidden = question.split_points()
        assert public > 0 and hidden > 0 and public + hidden == question.points


def test_hard_limit_reference_uses_chapter_4s_defaults() -> None:
    chapter = nbformat.read(ROOT / "book" / "04_data_inefficiency.ipynb", as_version=4)
    cell = next(c for c in chapter.cells if "parameters" in c.metadata.get("tags", []))
    defaults = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body}
    for name in ("seed", "frequency", "teacher_peak_logit", "temperature", "depth", "activation", "w_std", "b_std"):
        assert HARD_LIMIT_DEFAULTS[name] == defaults[name], name
    profile = re.search(r'"ci": dict\(n_seeds=(\d+), n_values=(\[[^\]]*\]), n_candidates=(\d+)',
                        "\n".join(c.source for c in chapter.cells))
    assert profile, "chapter 4's ci profile not found"
    assert [int(profile[1]), ast.literal_eval(profile[2]), int(profile[3])] == [
        HARD_LIMIT_DEFAULTS["n_seeds"], HARD_LIMIT_DEFAULTS["n_values"], HARD_LIMIT_DEFAULTS["n_candidates"]]


def test_hidden_inputs_depend_on_seed_and_nonce() -> None:
    entry = [{"name": "ch1_root", "answer": "effective_logit_root", "variables": []}]
    draws = [judge._cases_and_references(entry, seed=seed, nonce=nonce)[0]["ch1_root"]
             for seed, nonce in [(0, 1), (0, 1), (0, 2), (1, 1)]]
    assert draws[0] == draws[1], "a grading is reproducible from its seed and nonce"
    assert draws[0][-1] != draws[2][-1] and draws[0][-1] != draws[3][-1]
    assert draws[0][0].args == spec_for("ch1_root").public()[0].args, "the public test's own inputs come first"
    with pytest.raises(ValueError, match="question must be one of"):
        spec_for("ch9_nothing")


# ---------------------------------------------------------------------------------------------- the producer
def produce(namespace: dict, question: dict, tmp_path: Path) -> list[dict] | None:
    """Run the producer as the kernel would (in ``namespace``) and parse its answers as the judge does."""
    exec(judge.PRODUCER, namespace)  # noqa: S102 (the test plays the kernel)
    channel, request = tmp_path / "answers.json", tmp_path / "request.json"
    request.write_text(json.dumps(question))
    namespace["__kdwide_judge_produce"](str(channel), str(request))
    count = len(question["cases"]) + len(question["variables"])
    return judge._parse_answers(channel.read_text(), count)


CASE = {"args": [3.0, 0], "kwargs": {"rho": 0.5, "temperature": 1.0}, "kinds": ["float", "int", "float", "float"]}


def test_producer_refuses_objects_that_pretend_to_be_numbers(tmp_path: Path) -> None:
    source = textwrap.dedent('''
        import numpy, jax.numpy
        class Anything(float):
            __eq__ = lambda self, other: True
        class Chameleon:
            __float__ = lambda self: 0.0
            __array__ = lambda self, *a, **k: numpy.zeros(())
        answers = iter([Anything(1.0), Chameleon(), numpy.float64(2.0), jax.numpy.ones(2), [1, 2.5], True,
                        numpy.array(["a"]), None])
        def f(*args, **kwargs):
            return next(answers)
    ''')
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102
    parsed = produce(namespace, {"answer": "f", "variables": [], "writes": [], "cases": [CASE] * 8}, tmp_path)
    assert parsed is not None
    refused = [not p["ok"] and p["message"].startswith("refused:") for p in parsed]
    assert refused == [True, True, False, False, False, True, True, True]
    assert parsed[2]["array"].shape == () and parsed[3]["array"].tolist() == [1.0, 1.0]
    assert parsed[4]["array"].tolist() == [1.0, 2.5]


def test_producer_blocks_the_functions_the_question_asks_for_wherever_they_are_kept(tmp_path: Path) -> None:
    import kdwide

    before = float(kdwide.effective_logit(3.0, 0, rho=0.5, temperature=1.0))
    source = textwrap.dedent('''
        import kdwide
        from kdwide import effective_logit
        alias = kdwide.effective_logit
        def by_module(*a, **k): return kdwide.effective_logit(*a, **k)
        def by_name(*a, **k): return effective_logit(*a, **k)
        def by_saved(*a, _kept=alias, **k): return _kept(*a, **k)
        def by_closure():
            kept = alias
            return lambda *a, **k: kept(*a, **k)
        by_closure = by_closure()
        def falls_back(*a, **k):
            try:
                return kdwide.effective_logit(*a, **k)
            except NotImplementedError:
                return 1.0
    ''')
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102
    writes = ["kdwide.effective_logit.effective_logit"]
    for name in ("by_module", "by_name", "by_saved", "by_closure", "falls_back"):
        (answer,) = produce(namespace, {"answer": name, "variables": [], "writes": writes, "cases": [CASE]}, tmp_path)
        assert answer["blocked"] == writes, (name, answer)
        assert judge._case_problem(answer, np.asarray(1.0), Check(absolute=1e-9), public=True).startswith("delegation")
    assert float(kdwide.effective_logit(3.0, 0, rho=0.5, temperature=1.0)) == before, "restored after"
    assert namespace["effective_logit"] is sys.modules["kdwide.effective_logit"].effective_logit


def test_producer_reports_missing_answers_and_variables(tmp_path: Path) -> None:
    namespace = {"inefficiency_by_rho": np.ones((2, 4)), "limit_targets": "text"}
    question = {"answer": None, "variables": ["inefficiency_by_rho", "limit_targets", "limit_kernel"], "writes": [],
                "cases": []}
    ones, text, missing = produce(namespace, question, tmp_path)
    assert ones["ok"] and ones["array"].shape == (2, 4)
    assert not text["ok"] and text["message"].startswith("refused:")
    assert missing["error"] == "missing"
    (absent,) = produce({}, {"answer": "f", "variables": [], "writes": [], "cases": [CASE]}, tmp_path)
    assert absent["error"] == "missing"


# --------------------------------------------------------------------------------------- parsing and judging
def test_answers_are_parsed_strictly() -> None:
    good = {"ok": True, "shape": [2], "values": [1.0, 2], "blocked": []}
    assert judge._parse_answers(json.dumps({"results": [good]}), 1)[0]["array"].tolist() == [1.0, 2.0]
    nan = judge._parse_answers('{"results": [{"ok": true, "shape": [], "values": [NaN], "blocked": []}]}', 1)
    assert np.isnan(nan[0]["array"])
    for bad in [None, "", "[]", "{", json.dumps({"results": [good, good]}),
                json.dumps({"results": [{**good, "values": [1.0, True]}]}),
                json.dumps({"results": [{**good, "values": [1.0, "2"]}]}),
                json.dumps({"results": [{**good, "shape": [3]}]}),
                json.dumps({"results": [{**good, "shape": [-2]}]}),
                json.dumps({"results": [{**good, "shape": [1, 1, 1, 1, 2]}]}),
                json.dumps({"results": ["passed"]}), "[" * 100000 + "]" * 100000]:
        assert judge._parse_answers(bad, 1) is None, bad if bad is None or len(bad) < 200 else bad[:50]


def test_compare_names_the_failing_property() -> None:
    assert judge.compare(np.array([1.0]), np.asarray(1.0), Check(absolute=1e-9)) is None  # a 1-element answer
    assert judge.compare(np.array([1.0, 2.0]), np.asarray(1.0), Check()) == "shape"
    assert judge.compare(np.array(np.nan), np.asarray(1.0), Check(absolute=1.0)) == "finiteness"
    assert judge.compare(np.array(1.1), np.asarray(1.0), Check(absolute=0.05)) == "value"
    assert judge.compare(np.array(1.1), np.asarray(1.0), Check(relative=0.2)) is None
    assert judge.compare(np.array(1.0 + 1e-15), np.asarray(1.0), Check(exact=True)) == "value"


def test_feedback_names_properties_but_never_hidden_inputs_or_values() -> None:
    question = {"name": "ch1_flip", "answer": "flip_soft_ratio", "variables": [], "writes": [],
                "public_points": 1.0, "hidden_points": 2.0}
    cases, references = judge._cases_and_references([question], seed=5, nonce=7)
    cases, references = cases["ch1_flip"], references["ch1_flip"]
    values = [float(r) for r in references]
    right = [{"ok": True, "shape": [], "values": [v], "blocked": []} for v in values]
    raw = lambda entries: json.dumps({"results": entries})  # noqa: E731
    assert judge._judge_question(question, cases, references, raw(right), None) == (
        3.0, "test 1 (public): passed\ntest 2 (hidden): passed")
    wrong = right[:3] + [{**r, "values": [r["values"][0] + 0.1]} for r in right[3:]]
    points, text = judge._judge_question(question, cases, references, raw(wrong), None)
    assert points == 1.0 and "test 2 (hidden): failed: value" in text
    leaky = right[:3] + [{"ok": False, "error": "ValueError", "message": f"z={c.args[0]}", "blocked": []}
                         for c in cases[3:]]
    points, text = judge._judge_question(question, cases, references, raw(leaky), None)
    assert "ValueError" in text and "z=" not in text
    for value in values[1:] + [c.args[0] for c in cases[1:]]:
        assert f"{value:.4g}" not in text and repr(value) not in text
    assert judge._judge_question(question, cases, references, None, "time limit") == (
        0.0, "time limit: the notebook did not finish within the time limit")
    assert judge._judge_question(question, cases, references, None, "kernel ended")[1].startswith("no answer")


def test_only_a_report_signed_with_the_key_counts() -> None:
    key, other = b"k" * 32, b"o" * 32
    real = judge.sign_report({"score": 1.0}, key)
    forged = judge.sign_report({"score": 6.0}, other)
    unsigned = f'{judge.REPORT_MARKER} {"0" * 64} {{"score": 6.0}}'
    tampered = real.replace('"score": 1.0', '"score": 6.0')
    assert judge.read_report("\n".join([forged, real, unsigned, tampered, "noise"]), key) == {"score": 1.0}
    assert judge.read_report("\n".join([forged, unsigned, tampered]), key) is None


# ------------------------------------------------------------------------------------------------ the process
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux's")
def test_hardened_process_kills_escaped_descendants_and_hides_its_descriptors(tmp_path: Path) -> None:
    beat = tmp_path / "beat"
    script = textwrap.dedent(f'''
        import os, subprocess, sys, time
        from kdwide_book.judge import harden_process, kill_descendants
        harden_process()
        import ctypes
        print("dumpable:", ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))
        child = subprocess.run([sys.executable, "-c", "import os; print(len(os.listdir('/proc/{{}}/fd'.format(os.getppid()))))"],
                               capture_output=True, text=True)
        print("fd listing:", "refused" if "PermissionError" in child.stderr else "allowed")
        if os.fork() == 0:  # a daemon: its own session, its parent gone
            os.setsid()
            if os.fork() == 0:
                while True:
                    open({str(beat)!r}, "w").write(str(time.time()))
                    time.sleep(0.05)
            os._exit(0)
        time.sleep(0.5)
        kill_descendants()
        print("killed")
    ''')
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "dumpable: 0" in output.stdout and "killed" in output.stdout, output.stdout + output.stderr
    if os.geteuid() != 0:  # root may read any process's descriptors
        assert "fd listing: refused" in output.stdout, output.stdout
    before = beat.stat().st_mtime
    import time

    time.sleep(0.5)
    assert beat.stat().st_mtime == before, "the daemon survived kill_descendants"


def test_gradescope_entry_writes_results_json(tmp_path: Path) -> None:
    """The zip's run_otter.py calls ``main(["gradescope", ...])``: results.json in Gradescope's shape (here for a
    notebook of another assignment, which is refused before any kernel starts)."""
    chapter = {"name": "01_effective_logit", "notebook": "01_effective_logit.ipynb",
               "questions": [{"name": "ch1_root", "public_points": 1.0, "hidden_points": 2.0}]}
    (tmp_path / "source").mkdir()
    (tmp_path / "submission").mkdir()
    (tmp_path / "source" / "judge.json").write_text(json.dumps({"chapter": chapter, "seed": 0, "timeout": 60}))
    notebook = nbformat.v4.new_notebook(metadata={"otter": {"assignment_name": "02_linearization"}})
    nbformat.write(notebook, tmp_path / "submission" / "01_effective_logit.ipynb")
    results = judge.gradescope_results(tmp_path)
    written = json.loads((tmp_path / "results" / "results.json").read_text())
    assert written == results and written["score"] == 0.0
    assert written["tests"] == [{"name": "ch1_root", "score": 0.0, "max_score": 3.0, "visibility": "visible",
                                 "output": "not graded: Received submission for assignment '02_linearization', but "
                                           "this is '01_effective_logit'"}]


def test_answer_files_must_be_plain_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text('{"results": []}')
    assert judge._read_limited(plain) == '{"results": []}'
    (tmp_path / "link.json").symlink_to(plain)
    os.mkfifo(tmp_path / "fifo.json")  # reading it would block forever without a writer
    big = tmp_path / "big.json"
    with open(big, "wb") as handle:
        handle.truncate(judge.MAX_ANSWER_BYTES + 1)  # sparse: no disk used
    for name in ("link.json", "fifo.json", "big.json", "absent.json"):
        assert judge._read_limited(tmp_path / name) is None, name
