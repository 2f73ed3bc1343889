"""The judge: a student's notebook only *produces* answers; a process that never ran student code judges them.

Why not otter's own grading: ``otter run`` (and nbgrader) run every test in the student's kernel, against the student's
globals, after the student's code ran (otter-grader issue 490: no protection against cheating). One line that redefines
``abs`` or ``numpy.isclose`` there passes every test. Here otter keeps what it is good at (the student notebook, its
public ``grader.check`` cells, the Gradescope zip and its ``results.json`` shape), and points come only from this judge:

1. *Producer* (the student's process): a fresh Jupyter kernel, started by this process with nbclient in a session of
   its own, stdin/stdout/stderr on ``/dev/null``, runs every cell of the notebook within the time limit; its outputs are
   thrown away as they arrive (huge outputs cost only time). Then, for every question, one more cell calls the
   student's function on inputs this process drew at grading time from the grading seed and a fresh random nonce (so
   that nothing in any file, and not the seed alone, tells them in advance), with the kdwide functions the question
   asks the student to write replaced by functions that raise "not available in this question" (module attributes,
   names in the notebook and the function objects themselves). The cell reads the question and its inputs from a
   file and writes plain data (JSON numbers) to another, both fresh, in a folder this process created after the
   notebook ran.
2. The kernel and every process it started are then killed (this process is a child subreaper, so even processes that
   left the kernel's session are found), and only then are the answers read: strictly parsed, every value a number,
   the array of the expected shape and finite; anything else is a wrong answer.
3. *Judge* (this process, which never executes student code): reference answers from pristine kdwide and numpy
   (:mod:`kdwide_book.graded_questions`), imported and computed before the kernel starts (files the notebook changes
   later do not matter), compared here.

This process makes itself non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``), so that unprivileged processes of the same user
(the student's kernel) can neither read its memory (the seed, the nonce, the inputs and references) nor open its file
descriptors through ``/proc``. Its report to the caller (``make grade``) carries an HMAC with a key the caller sent on
stdin, so that nothing the student's processes write can pass for it.

Command line (used by :func:`kdwide_book.assignments.grade_submission` and by the Gradescope autograder)::

    python -m kdwide_book.judge submission        # job on stdin (JSON), signed report on stdout
    python -m kdwide_book.judge gradescope [--autograder /autograder]
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import hmac
import json
import math
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from kdwide.seeds import Streams

from kdwide_book.graded_questions import Case, Check, spec_for
from kdwide_book.results import atomic_write

__all__ = ["REPORT_MARKER", "MAX_ANSWER_BYTES", "harden_process", "grade_notebook", "sign_report", "read_report",
           "gradescope_results", "main"]

REPORT_MARKER = "KDWIDE-JUDGE-REPORT"
MAX_ANSWER_BYTES = 64 * 2**20  # one question's answers (chapter 4's kernel: ~6 MB of JSON)
BLOCKED = "is not available in this question"
PUBLIC_DRAWS = 2  # drawn cases added to the public test's own inputs in the public part

# Runs in the student's kernel. Nothing here is trusted: the student's code ran first and may have patched anything
# (builtins, numpy, json, this function's globals). Sabotage only spoils the student's own answers, which the judge
# then finds wrong; the judge reads nothing from here but plain numbers.
PRODUCER = r'''
def __kdwide_judge_produce(channel, request):
    import builtins, importlib, json, sys, types
    import numpy
    # the builtins' own functions, not names the notebook may have shadowed (patched builtins spoil its own answers)
    (isinstance, callable, type, getattr, hasattr, vars, list, dict, str, len, zip, open, float, int, BaseException,
     Exception, NotImplementedError, TypeError, compile, tuple) = (
        builtins.isinstance, builtins.callable, builtins.type, builtins.getattr, builtins.hasattr, builtins.vars,
        builtins.list, builtins.dict, builtins.str, builtins.len, builtins.zip, builtins.open, builtins.float,
        builtins.int, builtins.BaseException, builtins.Exception, builtins.NotImplementedError, builtins.TypeError,
        builtins.compile, builtins.tuple)
    with open(request) as handle:  # the question: names, and the inputs (a file: a literal this size compiles slowly)
        question = json.loads(handle.read())
    namespace, blocked_calls, restore, restore_code = globals(), [], [], []

    def blocker(name):
        def blocked(*args, **kwargs):
            blocked_calls.append(name)
            raise NotImplementedError(f"{name} BLOCKED: this question asks you to write it")
        return blocked

    for dotted in question["writes"]:
        module_name, _, attribute = dotted.rpartition(".")
        try:
            original = getattr(importlib.import_module(module_name), attribute)
        except Exception:
            continue
        replacement = blocker(dotted)
        for holder in [vars(m) for m in list(sys.modules.values()) if hasattr(m, "__dict__")] + [namespace]:
            for key, value in list(holder.items()):
                if value is original:
                    restore.append((holder, key, value))
                    holder[key] = replacement
        target = getattr(original, "__wrapped__", original)
        if isinstance(target, types.FunctionType) and not target.__code__.co_freevars:
            source = f"def blocked(*args, **kwargs):\n    raise NotImplementedError({dotted + ' BLOCKED'!r})"
            code = [c for c in compile(source, "<judge>", "exec").co_consts if isinstance(c, types.CodeType)][0]
            restore_code.append((target, target.__code__))
            target.__code__ = code
            getattr(original, "clear_cache", lambda: None)()

    def plain(value, depth=0):
        if type(value) in (list, tuple) and depth < 4:
            return [plain(item, depth + 1) for item in value]
        numeric = type(value) in (float, int) or (
            type(value).__module__ in ("numpy", "jaxlib.xla_extension", "jaxlib._jax", "jax._src.array")
            and hasattr(value, "dtype") and numpy.dtype(value.dtype).kind in "fiu")
        if not numeric:
            raise TypeError(f"refused: a {type(value).__module__}.{type(value).__qualname__}, not a number or array")
        return numpy.asarray(value).astype(numpy.float64).tolist()

    def answer(value):
        array = numpy.array(plain(value), dtype=numpy.float64)
        return {"ok": True, "shape": list(array.shape), "values": array.ravel().tolist()}

    def convert(value, kind):
        return {"array": lambda v: numpy.asarray(v, dtype=numpy.float64), "float": float, "int": int,
                "int_array": lambda v: numpy.asarray(v, dtype=numpy.int64), "floats": list}[kind](value)

    def failure(error):
        try:
            message = str(error)[:300]
        except BaseException:
            message = ""
        blocked = list(blocked_calls) or ([message.split(" ", 1)[0]] if "BLOCKED" in message else [])
        return {"ok": False, "error": type(error).__name__, "message": message, "blocked": blocked}

    results = []
    function = namespace.get(question["answer"]) if question["answer"] else None
    for case in question["cases"]:
        del blocked_calls[:]
        try:
            if question["answer"] and not callable(function):
                results.append({"ok": False, "error": "missing", "message": "", "blocked": []})
                continue
            values = [convert(v, k) for v, k in zip(case["args"] + list(case["kwargs"].values()), case["kinds"])]
            arguments, keywords = values[:len(case["args"])], dict(zip(case["kwargs"], values[len(case["args"]):]))
            results.append({**answer(function(*arguments, **keywords)), "blocked": list(blocked_calls)})
        except BaseException as error:
            results.append(failure(error))
    for name in question["variables"]:
        try:
            results.append(answer(namespace[name]) if name in namespace else
                           {"ok": False, "error": "missing", "message": "", "blocked": []})
        except BaseException as error:
            results.append(failure(error))
    for holder, key, value in restore:
        holder[key] = value
    for target, code in restore_code:
        target.__code__ = code
    from kdwide_book.results import atomic_write  # the project's one writer, here in the student's process
    atomic_write(channel, json.dumps({"results": results}), fsync=False)
'''.replace("BLOCKED", BLOCKED)


# ------------------------------------------------------------------------------------------------- the process
def harden_process() -> None:
    """Make this process non-dumpable (same-user processes cannot read its memory or reach its file descriptors
    through ``/proc``) and a child subreaper (orphaned descendants become its children, so none escapes
    :func:`kill_descendants`). Linux only; elsewhere a no-op (the README says what that leaves open)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_dumpable, pr_set_child_subreaper = 4, 36
    libc.prctl(pr_set_dumpable, 0, 0, 0, 0)
    libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def _children() -> list[int]:
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                found.append(int(entry.name))
    return found


def kill_descendants(kernel_pid: int | None = None, *, rounds: int = 50) -> None:
    """Kill the kernel's process group and every descendant of this process (and reap them)."""
    if kernel_pid is not None:
        try:
            os.killpg(kernel_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if not Path("/proc").is_dir():
        return
    for _ in range(rounds):  # a forking descendant may add children while we kill: repeat until none is left
        children = _children()
        if not children:
            return
        for pid in children:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        time.sleep(0.05)
        for pid in children:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


# ------------------------------------------------------------------------------------------------- producing
def _quiet_client(notebook: Any, cwd: str) -> Any:
    """An nbclient client that keeps no output (a notebook that prints gigabytes costs only time)."""
    from nbclient import NotebookClient

    class QuietClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001, ANN201 (nbclient's signature)
            return None

    return QuietClient(notebook, kernel_name="python3", allow_errors=True, store_widget_state=False,
                       record_timing=False, shutdown_kernel="immediate", resources={"metadata": {"path": cwd}})


def _run_cell(client: Any, cell: Any, index: int, deadline: float) -> str | None:
    """Execute one cell within what is left of the time limit: None, or "time limit" / "kernel ended"."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    left = deadline - time.monotonic()
    if left <= 0:
        return "time limit"
    client.timeout = max(1, int(left))
    try:
        client.execute_cell(cell, index)
    except CellTimeoutError:
        return "time limit"
    except DeadKernelError:
        return "kernel ended"
    except Exception as error:  # noqa: BLE001 (anything else the kernel's replies cause: no answer, not a crash)
        return f"kernel error ({type(error).__name__})"
    return None


def _produce(notebook: Any, questions: list[dict[str, Any]], cases: dict[str, list[Case]], *,
             timeout: float) -> tuple[dict[str, str | None], str | None]:
    """Run the notebook, then one producer cell per question: ``({question: raw answer text or None}, problem)``
    (problem: None, "time limit", "kernel ended" or "kernel error (...)")."""
    import nbformat

    deadline = time.monotonic() + timeout
    work = tempfile.mkdtemp(prefix="kdwide-kernel-")
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYDEVD_DISABLE_FILE_VALIDATION": "1", "MPLBACKEND": "Agg"}
    client, kernel_pid, channels, problem = _quiet_client(notebook, work), None, {}, None
    channel_dir = None
    try:
        with client.setup_kernel(cwd=work, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL):
            kernel_pid = client.km.provisioner.process.pid
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type == "code" and (problem := _run_cell(client, cell, index, deadline)):
                    break
            channel_dir = Path(tempfile.mkdtemp(prefix="kdwide-answers-"))
            for question in questions if problem is None else []:
                channels[question["name"]] = channel_dir / f"{secrets.token_hex(16)}.json"
                request = channel_dir / f"{secrets.token_hex(16)}.json"
                atomic_write(request, json.dumps({
                    "answer": question.get("answer"), "variables": question.get("variables", []),
                    "writes": question.get("writes", []),
                    "cases": [case.plain() for case in cases.get(question["name"], [])]}), fsync=False)
                cell = nbformat.v4.new_code_cell(
                    PRODUCER + f"\n__kdwide_judge_produce({str(channels[question['name']])!r}, {str(request)!r})\n")
                notebook.cells.append(cell)  # nbclient looks cells up by index
                if problem := _run_cell(client, cell, len(notebook.cells) - 1, deadline):
                    break
    except Exception as error:  # noqa: BLE001 (the kernel did not start, or died in a way nbclient reports oddly)
        problem = problem or f"kernel error ({type(error).__name__})"
    finally:
        kill_descendants(kernel_pid)
    raw = {name: _read_limited(path) for name, path in channels.items()}
    for folder in (work, channel_dir):
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return raw, problem


def _read_limited(path: Path) -> str | None:
    """The text of an answer file, if it is a regular file (not a link, a FIFO that would block, a device) of at most
    :data:`MAX_ANSWER_BYTES`; else None."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        status = os.fstat(handle)
        if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_ANSWER_BYTES:
            return None
        with os.fdopen(handle, "rb", closefd=False) as stream:
            return stream.read(MAX_ANSWER_BYTES + 1).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(handle)


# ------------------------------------------------------------------------------------------------- judging
def _parse_answers(text: str | None, expected_count: int) -> list[dict[str, Any]] | None:
    """The producer's answers, strictly: a list of ``expected_count`` entries, each an answer (``shape``: up to 4
    non-negative ints, ``values``: that many numbers; NaN/Infinity kept as non-finite) or a failure. Else None."""
    if text is None:
        return None
    try:
        data = json.loads(text, parse_constant=lambda _: math.nan)
    except (ValueError, RecursionError):
        return None
    results = data.get("results") if type(data) is dict else None
    if type(results) is not list or len(results) != expected_count:
        return None
    parsed = []
    for entry in results:
        if type(entry) is not dict:
            return None
        blocked = [str(b)[:100] for b in entry.get("blocked", [])] if type(entry.get("blocked")) is list else []
        if entry.get("ok") is True:
            shape, values = entry.get("shape"), entry.get("values")
            if (type(shape) is not list or len(shape) > 4 or any(type(s) is not int or s < 0 for s in shape)
                    or type(values) is not list or len(values) != math.prod(shape)
                    or any(type(v) not in (int, float) for v in values)):
                return None
            parsed.append({"ok": True, "array": np.asarray(values, dtype=np.float64).reshape(shape), "blocked": blocked})
        else:
            parsed.append({"ok": False, "error": str(entry.get("error", ""))[:80],
                           "message": str(entry.get("message", ""))[:300], "blocked": blocked})
    return parsed


def compare(answer: np.ndarray, expected: np.ndarray, check: Check) -> str | None:
    """The property an answer fails ("shape", "finiteness" or "value"), or None when it is right."""
    expected = np.asarray(expected, dtype=np.float64)
    if expected.ndim == 0 and answer.size == 1:
        answer = answer.reshape(())
    if answer.shape != expected.shape:
        return "shape"
    if not np.all(np.isfinite(answer)):
        return "finiteness"
    if check.exact:
        return None if np.array_equal(answer, expected) else "value"
    close = np.abs(answer - expected) <= check.absolute + check.relative * np.abs(expected)
    return None if bool(np.all(close)) else "value"


def _case_problem(answer: dict[str, Any], expected: np.ndarray, check: Check, *, public: bool) -> str | None:
    """What is wrong with one answer, in words a student may read (hidden inputs and values never appear)."""
    if answer["blocked"]:
        names = ", ".join(sorted(set(answer["blocked"])))
        return f"delegation: your answer called {names}, which this question asks you to write ({BLOCKED})"
    if not answer["ok"]:
        if answer["error"] == "missing":
            return "not answered: the function or variable is not defined after the notebook ran"
        if answer["error"] == "TypeError" and answer["message"].startswith("refused:"):
            return f"type: {answer['message'][len('refused: '):]}"
        detail = f": {answer['message']}" if public and answer["message"] else ""
        return f"error: your code raised {answer['error']}{detail}"
    failed = compare(answer["array"], expected, check)
    if failed == "shape" and public:
        return f"shape: got {answer['array'].shape}, expected {np.shape(expected)}"
    return {"shape": "shape: the answer does not have the expected shape",
            "finiteness": "finiteness: the answer has NaN or infinite entries",
            "value": "value: the answer differs from the right one by more than the tolerance"}.get(failed)


def _part(answers: list[dict[str, Any]], references: list[np.ndarray], checks: list[Check],
          detailed: list[bool]) -> str:
    """Feedback for one part (public or hidden) of a question: "passed" or the first failing property (with details,
    such as the error's message, only for cases whose inputs the student knows)."""
    problems = [_case_problem(a, r, c, public=d) for a, r, c, d in zip(answers, references, checks, detailed)]
    failed = [p for p in problems if p]
    if not failed:
        return "passed"
    count = f" ({len(failed)} of {len(problems)} cases)" if len(problems) > 1 else ""
    return f"failed: {failed[0]}{count}"


def _judge_question(question: dict[str, Any], cases: list[Case], references: list[np.ndarray],
                    raw: str | None, problem: str | None) -> tuple[float, str]:
    """``(points, feedback)`` of one question from the producer's raw answers and this process's references."""
    spec = spec_for(question["name"])
    if question.get("variables"):
        names = list(question["variables"])
        checks = [spec.variable_checks.get(n, Check()) for n in names]
        parts = {True: [i for i, n in enumerate(names) if n in spec.public_variables], False: list(range(len(names)))}
        known = [True] * len(names)  # no hidden inputs: the variables come from the chapter's own parameters
    else:
        checks = [spec.check] * len(cases)
        public_count = sum(case.public for case in cases)
        parts = {True: list(range(public_count)), False: list(range(public_count, len(cases)))}
        known = [i < len(spec.public()) for i in range(len(cases))]
    answers = _parse_answers(raw, len(references))
    if answers is None:
        reasons = {"time limit": "time limit: the notebook did not finish within the time limit",
                   "kernel ended": "no answer: the notebook's kernel ended before the answers were produced"}
        fallback = f"no answer: {problem}" if problem else "no answer: nothing valid came back from the notebook"
        return 0.0, reasons.get(problem or "", fallback)
    points, lines = 0.0, []
    for is_public, label, worth in ((True, "test 1 (public)", question["public_points"]),
                                    (False, "test 2 (hidden)", question["hidden_points"])):
        chosen = parts[is_public]
        verdict = _part([answers[i] for i in chosen], [references[i] for i in chosen], [checks[i] for i in chosen],
                        [known[i] for i in chosen])
        points += worth if verdict == "passed" else 0.0
        lines.append(f"{label}: {verdict}")
    return points, "\n".join(lines)


def _cases_and_references(questions: list[dict[str, Any]], *, seed: int, nonce: int) -> tuple[dict, dict]:
    """Every question's cases (public, then hidden ones drawn from ``seed`` and ``nonce``) and reference answers."""
    cases: dict[str, list[Case]] = {}
    references: dict[str, list[np.ndarray]] = {}
    for index, question in enumerate(questions):
        spec = spec_for(question["name"])
        if question.get("variables"):
            values = spec.reference_variables()
            cases[question["name"]], references[question["name"]] = [], [values[n] for n in question["variables"]]
            continue
        # kdwide.seeds.Streams: the grading seed, then the nonce and the question as indices (full width, not hashed)
        question_streams = Streams(seed).child("grading").repetition(nonce).repetition(index)
        streams = [question_streams.rng(f"part {part}") for part in (0, 1)]
        # public part: the public test's inputs and two drawn like the hidden ones (a memorized answer fails)
        public = [replace(case, public=True) for case in spec.public() + spec.draw(streams[0])[:PUBLIC_DRAWS]]
        cases[question["name"]] = public + spec.draw(streams[1])
        references[question["name"]] = [np.asarray(spec.reference(case)) for case in cases[question["name"]]]
    return cases, references


def _question_row(question: dict[str, Any], points: float, feedback: str) -> dict[str, Any]:
    return {"name": question["name"], "score": points, "max_score": question["public_points"] + question["hidden_points"],
            "output": feedback, "visibility": "visible"}


def grade_notebook(notebook_text: str, chapter: dict[str, Any], *, seed: int, timeout: float) -> dict[str, Any]:
    """Grade one submitted notebook of ``chapter`` (an entry of ``course.json``) and return Gradescope's
    ``results.json`` object: ``score``, ``output`` and ``tests`` (one per question: name, score, max_score, output).

    Args:
      notebook_text: the submission (JSON text of an ``.ipynb``).
      chapter: ``name``, ``questions`` (name, public_points, hidden_points, answer or variables, writes) and
        ``question_stubs`` (the handout's answer cells, to say "not answered").
      seed: the grading seed; with a fresh nonce it draws the hidden inputs.
      timeout: seconds for the whole notebook and its answers.

    Example:
      >>> grade_notebook("not a notebook", {"name": "01_effective_logit", "questions": []}, seed=0, timeout=60)["output"]
      'Not graded: the submission is not a readable notebook'
    """
    import nbformat

    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    questions = chapter["questions"]
    try:
        notebook = nbformat.reads(notebook_text, as_version=4)
    except Exception:  # noqa: BLE001 (whatever the file is, it is not a notebook)
        return _not_graded(questions, "the submission is not a readable notebook")
    name = (notebook.metadata.get("otter") or {}).get("assignment_name")
    if name != chapter["name"]:
        return _not_graded(questions, f"Received submission for assignment '{name}', but this is '{chapter['name']}'")
    cases, references = _cases_and_references(questions, seed=seed, nonce=secrets.randbits(128))
    source = "\n".join(cell.source for cell in notebook.cells)
    start = time.monotonic()
    raw, problem = _produce(notebook, questions, cases, timeout=timeout)
    tests = []
    for question in questions:
        points, feedback = _judge_question(question, cases[question["name"]], references[question["name"]],
                                           raw.get(question["name"]), problem)
        stubs = chapter.get("question_stubs", {}).get(question["name"], [])
        if stubs and all(stub in source for stub in stubs):
            feedback = "not answered: the answer cell is unchanged from the handout (it still has `...`)\n" + feedback
        tests.append(_question_row(question, points, feedback))
    seconds = time.monotonic() - start
    return {"score": sum(t["score"] for t in tests), "tests": tests, "execution_time": round(seconds, 1),
            "output": f"Graded by the kdwide judge in {seconds:.0f} s" + (f" ({problem})" if problem else "")}


def _not_graded(questions: list[dict[str, Any]], reason: str) -> dict[str, Any]:
    return {"score": 0.0, "output": f"Not graded: {reason}",
            "tests": [_question_row(q, 0.0, f"not graded: {reason}") for q in questions]}


# ---------------------------------------------------------------------------------------------- reporting
def sign_report(report: dict[str, Any], key: bytes) -> str:
    """One line: the marker, an HMAC-SHA256 of the JSON payload with ``key``, the payload."""
    payload = json.dumps(report, sort_keys=True, allow_nan=False)
    return f"{REPORT_MARKER} {hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()} {payload}"


def read_report(output: str, key: bytes) -> dict[str, Any] | None:
    """The last line of ``output`` that is a report signed with ``key`` (anything else, forged lines included, is
    ignored), or None."""
    for line in reversed(output.splitlines()):
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == REPORT_MARKER:
            mac = hmac.new(key, parts[2].encode(), hashlib.sha256).hexdigest()
            if hmac.compare_digest(mac, parts[1]):
                return json.loads(parts[2])
    return None


def gradescope_results(autograder: str | Path) -> dict[str, Any]:
    """Grade ``AUTOGRADER/submission/*.ipynb`` with ``AUTOGRADER/source/judge.json`` and write
    ``AUTOGRADER/results/results.json`` (what Gradescope reads); returns the results."""
    autograder = Path(autograder)
    config = json.loads((autograder / "source" / "judge.json").read_text())
    chapter = config["chapter"]
    notebooks = sorted((autograder / "submission").rglob("*.ipynb"))
    named = [p for p in notebooks if p.name == chapter["notebook"]]
    if not notebooks:
        results = _not_graded(chapter["questions"], f"no notebook in the submission (expected {chapter['notebook']})")
    else:
        results = grade_notebook((named or notebooks)[0].read_text(errors="replace"), chapter, seed=config["seed"],
                                 timeout=float(config["timeout"]))
    atomic_write(autograder / "results" / "results.json", json.dumps(results, indent=1, allow_nan=False))
    return results


def _preload() -> None:
    """Import everything the references need before any student code runs (files changed later do not matter)."""
    import kdwide  # noqa: F401
    from kdwide import data_inefficiency, kernels, linearized, metrics, predict, tasks  # noqa: F401
    from kdwide.experiments import imperfect_teacher, risk_bound, task_difficulty  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdwide_book.judge", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("submission", help="grade one notebook: job (JSON) on stdin, signed report on stdout")
    gradescope = commands.add_parser("gradescope", help="grade a Gradescope submission into results/results.json")
    gradescope.add_argument("--autograder", type=Path, default=Path("/autograder"))
    args = parser.parse_args(argv)
    harden_process()
    if args.command == "gradescope":
        _preload()
        gradescope_results(args.autograder)
        return 0
    job = json.loads(sys.stdin.read())
    key = bytes.fromhex(job["key"])
    _preload()
    report = grade_notebook(job["notebook"], job["chapter"], seed=int(job["seed"]), timeout=float(job["timeout"]))
    sys.stdout.write(sign_report(report, key) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
