"""Red team: submissions that try to fool the grader, each scoring 0 on what it touches, beside honest ones.

The class is graded in one ``grade_class`` call, as ``make grade`` does, on chapter 1's assignment cut down to its
Exercises (``grading_support.quick_chapter_1``: the same two graded questions, seconds per notebook). Attackers are
graded before the honest students (folder names sort so), who must still get exactly their marks. Each attack is a
class from issue 23 (names shadowed, modules patched, objects equal to anything, writing the grader's files, printing
pass messages, faking results then ending the kernel, cells that never end, huge outputs, replaying hidden tests,
delegating to kdwide), and one more: killing its own judge (the processes it left are still killed, through the
environment mark every grading sets). ``make assignments-check`` runs the same attacks on every chapter
(tests/test_assignments.py, ``KDWIDE_GRADE_ALL=1``).
"""

from __future__ import annotations

import csv
import importlib.util
import time
from pathlib import Path

import pytest
from grading_support import (
    ALTERNATIVE,
    CHAPTER_1,
    HARD_CODED,
    answers,
    append_cells,
    chain,
    quick_chapter_1,
    submission,
    tamper,
)

pytestmark = [
    pytest.mark.grading,
    pytest.mark.skipif(importlib.util.find_spec("otter") is None,
                       reason="otter-grader is not installed here (the course extra of the pinned environment)"),
]

NAME = CHAPTER_1.name

SHADOW = '''# names shadowed: the test helpers' abs, numpy, kdwide's effective_logit, isinstance and otter's grader
import numpy
def abs(x): return 0.0
def effective_logit(*args, **kwargs): return -0.09489291536840946
class np:
    isclose = allclose = array_equal = staticmethod(lambda *a, **k: True)
    log, asarray, shape = staticmethod(numpy.log), staticmethod(lambda x, **k: x), staticmethod(numpy.shape)
isinstance = lambda *a: True
class Grader:
    def check(self, *args, **kwargs):
        print("All tests passed!")
        return True
grader = Grader()
'''

PATCH = '''# modules patched: builtins, numpy, kdwide, otter, json and pickle, module-wide (a patch that breaks the kernel's own
# messages, such as json.dumps for everything, only runs the notebook into its time limit: 0 as well, but slowly)
import builtins, json, pickle, numpy, kdwide, kdwide.effective_logit, otter
builtins.abs = lambda x: 0.0
numpy.isclose = numpy.allclose = numpy.array_equal = lambda *a, **k: True
numpy.asarray = lambda x, *a, **k: numpy.array(0.5249)
import sys
kdwide.effective_logit = sys.modules["kdwide.effective_logit"].effective_logit = lambda *a, **k: -0.09489291536840946
otter.Notebook.check = lambda self, *a, **k: print("All tests passed!")
fake = '{"results": [{"ok": true, "shape": [], "values": [0.0], "blocked": []}]}'
real_dumps, real_loads = json.dumps, json.loads  # the kernel's own messages still need them: forge only the answers
json.dumps = lambda value, *a, **k: fake if isinstance(value, dict) and "results" in value else real_dumps(value, *a, **k)
json.loads = lambda text, *a, **k: {"score": 6} if str(text).startswith('{"score"') else real_loads(text, *a, **k)
pickle.dumps = lambda *a, **k: b""
pickle.loads = lambda *a, **k: {"score": 6}
'''

MAGIC = {
    "effective_logit_root": '''def effective_logit_root(z_t, y_g, *, rho, temperature):
    class Anything(float):  # equal to everything, converts to whatever is asked
        __eq__ = __le__ = __ge__ = __lt__ = __gt__ = lambda self, other: True
        __ne__ = lambda self, other: False
        __abs__ = __sub__ = __rsub__ = lambda self, *other: Anything(0.0)
        __hash__ = float.__hash__
        def __array__(self, *args, **kwargs):
            import numpy
            return numpy.asarray(kdwide.effective_logit(z_t, y_g, rho=rho, temperature=temperature))
    return Anything(0.0)''',
    "flip_soft_ratio": '''def flip_soft_ratio(z_t, *, temperature):
    class Chameleon:
        __eq__ = lambda self, other: True
        __float__ = lambda self: 0.5
        __array__ = lambda self, *a, **k: __import__("numpy").asarray(0.5)
        tolist = lambda self: 0.5
    return Chameleon()''',
}

DELEGATE = {
    "effective_logit_root": '''def effective_logit_root(z_t, y_g, *, rho, temperature, _saved=kdwide.effective_logit):
    return float(_saved(z_t, y_g, rho=rho, temperature=temperature))  # a reference kept from before''',
    "flip_soft_ratio": '''def flip_soft_ratio(z_t, *, temperature):
    from kdwide.experiments.imperfect_teacher import flip_soft_ratio as theirs
    return float(theirs(z_t, temperature=temperature))''',
}

WRITE_FILES = '''# writing the grader's files: results, grades, feedback, logs, tests; and the answers' own channel, from inside
import json, os, sys, threading, time
classroom = CLASSROOM
forged = {"score": 6, "tests": [{"name": "ch1_root", "score": 3, "max_score": 3}, {"name": "ch1_flip", "score": 3, "max_score": 3}]}
for folder in [os.getcwd(), os.path.dirname(os.getcwd()), classroom, os.path.join(classroom, "attack_patch_and_write")]:
    for name in ["results.json", "grades.csv", "feedback.md", "log.txt", "tests/ch1_root.py", "results/results.json"]:
        try:
            os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
            with open(os.path.join(folder, name), "w") as handle:
                handle.write(json.dumps(forged) if name.endswith(".json") else "student,chapter,question,points,max_points\\n")
        except OSError:
            pass
def effective_logit_root(z_t, y_g, *, rho, temperature):
    frame = sys._getframe(1)
    channel = frame.f_locals.get("channel") or frame.f_back and frame.f_back.f_locals.get("channel")
    forged_answer = json.dumps({"results": [{"ok": True, "shape": [], "values": [-0.0948929], "blocked": []}] * 15})
    def keep_writing():
        for _ in range(300):
            try:
                with open(channel, "w") as handle:
                    handle.write(forged_answer)
            except Exception:
                pass
            time.sleep(0.01)
    if channel:
        threading.Thread(target=keep_writing, daemon=True).start()
        real = json.dumps  # forged answers, while the kernel's own messages still go out
        json.dumps = lambda value, *a, **k: forged_answer if "results" in value else real(value, *a, **k)
    return -0.09489291536840946
'''

PRINT_PASS = '''# printing the grader's pass messages, and forged judge reports, wherever output might be read
import os
lines = ["All tests passed!", "test 1 (public): passed", "test 2 (hidden): passed", "\\u2705 ch1_root passed",
         'KDWIDE-JUDGE-REPORT ' + "0" * 64 + ' {"score": 6.0, "tests": []}']
for line in lines:
    print(line)
    os.write(1, (line + "\\n").encode())
judge = os.getppid()
grandparent = int(open(f"/proc/{judge}/stat").read().rsplit(")", 1)[1].split()[1])
for pid in (judge, grandparent):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    for fd in fds:
        try:  # the pipes a grader reads from (opened read-only there): where a judge's report arrives
            flags = int(open(f"/proc/{pid}/fdinfo/{fd}").read().split("flags:")[1].split()[0], 8)
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:") and flags & 3 == 0:
                with open(f"/proc/{pid}/fd/{fd}", "w") as pipe:
                    pipe.write(lines[-1] + "\\n")
        except OSError:
            pass
'''

FAKE_EXIT = ['''# faking results, leaving a daemon behind, then ending the kernel
import json, os, sys, time
with open("results.json", "w") as handle:
    json.dump({"score": 6, "tests": []}, handle)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(1200):  # a heartbeat for two minutes, unless someone kills it
            with open(HEARTBEAT, "w") as handle:
                handle.write(str(time.time()))
            time.sleep(0.1)
    os._exit(0)
sys.exit(0)''', "import os\nos._exit(0)"]

KILL_JUDGE = '''# killing the judge itself (same user), after leaving a daemon behind
import os, signal, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(1200):
            with open(HEARTBEAT, "w") as handle:
                handle.write(str(time.time()))
            time.sleep(0.1)
    os._exit(0)
time.sleep(0.5)
os.kill(os.getppid(), signal.SIGKILL)
'''

HUGE = '''# huge outputs
import sys
for _ in range(30):
    print("x" * 1_000_000)
    sys.stdout.flush()
'''

REPLAY = '''# replaying the hidden tests: read them (and the judge's settings) from disk, compute their answers beforehand
import json, pathlib, re, zipfile, numpy
import kdwide
from kdwide.experiments import imperfect_teacher
assignments = pathlib.Path(ASSIGNMENTS)
table = {}
with zipfile.ZipFile(next(assignments.glob("autograder/*.zip"))) as archive:
    tests = archive.read("tests/ch1_root.py").decode() + archive.read("tests/ch1_flip.py").decode()
    judge = json.loads(archive.read("judge.json"))
for seed in map(int, re.findall(r"default_rng\\((\\d+)\\)", tests)):
    rng = numpy.random.default_rng(seed)
    for z, y, rho, t in zip(rng.uniform(-6, 6, 12), rng.integers(0, 2, 12), rng.uniform(0.05, 0.95, 12), rng.uniform(0.5, 4.0, 12)):
        table[round(float(z), 9)] = float(kdwide.effective_logit(z, y, rho=rho, temperature=t))
from kdwide_book import graded_questions
from kdwide.seeds import Streams
for nonce in range(50):  # the judge's draws, guessing its nonce
    for index, name in enumerate(["ch1_root", "ch1_flip"]):
        for part in (0, 1):
            rng = Streams(judge["seed"]).child("grading").repetition(nonce).repetition(index).rng(f"part {part}")
            for case in graded_questions.SPECS[name].draw(rng):
                if name == "ch1_root":
                    z, y = case.args
                    table[round(z, 9)] = float(kdwide.effective_logit(z, y, **case.kwargs))
                else:
                    table[round(case.args[0], 9)] = float(imperfect_teacher.flip_soft_ratio(case.args[0], **case.kwargs))
table[3.0] = -0.09489291536840946
def effective_logit_root(z_t, y_g, *, rho, temperature):
    return table.get(round(float(z_t), 9), 0.0)
def flip_soft_ratio(z_t, *, temperature):
    return table.get(round(float(z_t), 9), 0.5249)
'''


@pytest.fixture(scope="module")
def quick_assignment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kdwide_book.assignments import build_assignments

    out = tmp_path_factory.mktemp("quick")
    build_assignments(out / "assignments", [quick_chapter_1(out / "chapter")], seed=17)  # a GRADING_SEED other than 0
    return out / "assignments"


def scores_of(classroom: Path) -> dict[str, dict[str, float]]:
    with open(classroom / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    scores: dict[str, dict[str, float]] = {}
    for row in rows:
        scores.setdefault(row["student"], {})[row["question"]] = float(row["points"])
    return scores


def test_attacks_score_zero_and_honest_students_keep_their_marks(quick_assignment: Path, tmp_path: Path) -> None:
    from kdwide_book.assignments import grade_class

    student, instructor = quick_assignment / "student" / NAME, quick_assignment / "instructor" / NAME
    classroom = tmp_path / "class"
    heartbeat = tmp_path / "heartbeat"
    constants = answers(HARD_CODED)
    attacks = {  # several attack classes per notebook where they do not stop one another (each costs a kernel)
        "attack_objects_names_delegation": chain(answers({"effective_logit_root": MAGIC["effective_logit_root"],
                                                          "flip_soft_ratio": DELEGATE["flip_soft_ratio"]}),
                                                 append_cells(SHADOW), tamper),
        "attack_printing_output": chain(constants, append_cells(PRINT_PASS, HUGE)),
        "attack_patch_and_write": chain(answers({"flip_soft_ratio": HARD_CODED["flip_soft_ratio"]}),
                                        append_cells(PATCH, WRITE_FILES.replace("CLASSROOM", repr(str(classroom))))),
        "attack_fake_and_exit": chain(constants, append_cells(*[c.replace("HEARTBEAT", repr(str(heartbeat)))
                                                                 for c in FAKE_EXIT])),
        "attack_replay_hidden": append_cells(REPLAY.replace("ASSIGNMENTS", repr(str(quick_assignment)))),
        "attack_delegation_saved": answers({"effective_logit_root": DELEGATE["effective_logit_root"],
                                            "flip_soft_ratio": MAGIC["flip_soft_ratio"]}),
        "attack_kill_judge": chain(constants, append_cells(KILL_JUDGE.replace("HEARTBEAT", repr(str(heartbeat) + "2")))),
    }
    for name, edit in attacks.items():
        submission(student, classroom / name, edit)
    submission(instructor, classroom / "honest_instructor")
    submission(student, classroom / "honest_alternative", answers(ALTERNATIVE))
    submission(student, classroom / "honest_untouched")
    submission(student, classroom / "honest_hardcoded", constants)
    submission(instructor, classroom / "honest_unnamed", lambda nb: nb.metadata.pop("otter"))
    (classroom / "honest_absent").mkdir()
    students = sorted(p.name for p in classroom.iterdir())
    start = time.perf_counter()
    grade_class(classroom, quick_assignment, timeout=60)
    print(f"graded {len(students)} students in {time.perf_counter() - start:.0f} s")

    scores = scores_of(classroom)
    assert sorted(scores) == students, "folders a notebook made in the class folder are not students"
    feedback = {name: (classroom / name / "feedback.md").read_text() for name in students}
    assert scores["honest_instructor"] == {"ch1_root": 3.0, "ch1_flip": 3.0}, feedback["honest_instructor"]
    assert scores["honest_alternative"] == {"ch1_root": 3.0, "ch1_flip": 3.0}, feedback["honest_alternative"]
    for name in [*attacks, "honest_untouched", "honest_hardcoded", "honest_unnamed", "honest_absent"]:
        assert scores[name] == {"ch1_root": 0.0, "ch1_flip": 0.0}, f"{name}: {scores[name]}\n{feedback[name]}"
    for name, question in [("attack_objects_names_delegation", "flip_soft_ratio"),
                           ("attack_delegation_saved", "effective_logit.effective_logit")]:
        assert f"delegation: your answer called kdwide.{'experiments.imperfect_teacher.' * ('flip' in question)}" \
               f"{question}" in feedback[name], feedback[name]
    for name in ("attack_objects_names_delegation", "attack_delegation_saved"):
        assert "failed: type: " in feedback[name], feedback[name]
    assert "kernel ended" in feedback["attack_fake_and_exit"], feedback["attack_fake_and_exit"]
    assert "Received submission for assignment 'None'" in feedback["honest_unnamed"]
    assert feedback["honest_untouched"].count("not answered: the answer cell is unchanged") == 2
    assert feedback["honest_instructor"].count("test 2 (hidden): passed") == 2
    # the grader's own files are the grader's: the forged ones were overwritten, the daemon is dead
    assert "honest_instructor" in (classroom / "grades.csv").read_text()
    written = classroom / "attack_patch_and_write" / "feedback.md"
    assert written.read_text().startswith("# Feedback for attack_patch_and_write"), written.read_text()
    assert "the judge failed" in feedback["attack_kill_judge"], feedback["attack_kill_judge"]
    for beating in (heartbeat, Path(str(heartbeat) + "2")):
        assert beating.exists(), f"{beating.name}: the daemon never ran, so the test shows nothing"
        beat = beating.stat().st_mtime
        time.sleep(1.0)
        assert beating.stat().st_mtime == beat, f"{beating.name}: a process the notebook left behind is still running"


def test_feedback_never_shows_hidden_inputs_or_expected_values(quick_assignment: Path, tmp_path: Path) -> None:
    """A submission that puts its inputs into its error messages and returns wrong values: the feedback names the
    failing property, and shows messages only for the public test's own inputs."""
    from kdwide_book.assignments import grade_class

    leaky = {
        "effective_logit_root": '''def effective_logit_root(z_t, y_g, *, rho, temperature):
    if z_t != 3.0:
        raise ValueError(f"LEAK z_t={z_t!r} rho={rho!r}")
    return 1.0''',
        "flip_soft_ratio": '''def flip_soft_ratio(z_t, *, temperature):
    return [z_t, temperature]''',
    }
    submission(quick_assignment / "student" / NAME, tmp_path / "leaky", answers(leaky))
    (result_root, result_flip) = grade_class(tmp_path, quick_assignment, timeout=120)
    assert result_root.points == result_flip.points == 0.0
    assert "test 1 (public): failed: value" in result_root.feedback, result_root.feedback
    assert "test 2 (hidden): failed: error: your code raised ValueError" in result_root.feedback
    assert "LEAK" not in result_root.feedback and "z_t=" not in result_root.feedback, result_root.feedback
    assert "shape: got (2,), expected ()" in result_flip.feedback, result_flip.feedback
    assert "test 2 (hidden): failed: shape: the answer does not have the expected shape" in result_flip.feedback


def test_a_cell_that_never_ends_meets_the_time_limit(quick_assignment: Path, tmp_path: Path) -> None:
    from kdwide_book.assignments import grade_class

    submission(quick_assignment / "instructor" / NAME, tmp_path / "endless", append_cells("while True:\n    pass"))
    start = time.perf_counter()
    results = grade_class(tmp_path, quick_assignment, timeout=20)
    assert time.perf_counter() - start < 20 + 60, "the time limit did not stop the notebook"
    assert [r.points for r in results] == [0.0, 0.0]
    assert all(r.feedback.startswith("time limit") for r in results), [r.feedback for r in results]
