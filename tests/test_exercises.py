"""`rnn-tutor exercises`: the workspace, the checker's verdicts, and its safety against the
learner's code (hangs, crashes, syntax errors, memory blow-ups, floods of output, stray
processes). The learner's files here are real Python run by the real checker in its child."""
import json
import os
import time
from pathlib import Path

import pytest

from tutor import cli
from tutor.exercises.catalog import BY_NUMBER, EXERCISES
from tutor.exercises.check import check_file
from tutor.exercises.record import ExerciseRecord
from tutor.exercises.runner import Limits
from tutor.exercises.workspace import open_workspace

FAST = Limits(seconds=1.0, memory_bytes=256 << 20)


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_TUTOR_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def ws(tmp_path):
    return open_workspace(tmp_path / "ex")


def solve(ws, number, edit=lambda s: s):
    """Write the reference solution, changed by `edit`, into the learner's file."""
    ex = BY_NUMBER[number]
    text = edit(ex.solution)
    path = ws.file(ex)
    path.write_text(text, encoding="utf-8")
    return ex, path


def replace_once(old, new):
    def edit(text):
        assert old in text, old
        return text.replace(old, new, 1)
    return edit


def stub_with(body):
    """Exercise 1's template with rnn_step_forward's body replaced."""
    template = BY_NUMBER[1].template
    marker = "    raise NotImplementedError\n"
    return template.replace(marker, body, 1)


def test_workspace_is_created_and_reopening_keeps_the_learners_files(tmp_path):
    first = open_workspace(tmp_path / "ex")
    assert first.created == [e.file for e in EXERCISES]
    mine = first.path / "01_rnn_step.py"
    mine.write_text("# my work\n")
    (first.path / "03_clipping.py").unlink()
    again = open_workspace(tmp_path / "ex")
    assert again.created == ["03_clipping.py"]
    assert mine.read_text() == "# my work\n"
    assert "def clip_by_norm(grads, max_norm)" in (again.path / "03_clipping.py").read_text()


def test_the_first_file_has_the_contract_signatures(ws):
    text = ws.file(BY_NUMBER[1]).read_text()
    assert "def rnn_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):" in text
    assert "def rnn_step_backward(dh, cache):" in text
    assert "(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)" in text


@pytest.mark.parametrize("number", [e.number for e in EXERCISES])
def test_untouched_stub_fails_as_not_written_yet(ws, number):
    ex = BY_NUMBER[number]
    result = check_file(ex, ws.file(ex), FAST)
    assert result.status == "todo" and not result.passed
    assert result.summary == (f"{ex.file}: not written yet: {ex.functions[0]}() still raises "
                              "NotImplementedError")


@pytest.mark.parametrize("number", [e.number for e in EXERCISES])
def test_the_reference_solution_passes(ws, number):
    ex, path = solve(ws, number)
    result = check_file(ex, path, FAST, seed=number)
    assert result.passed, result.lines()
    assert result.details == []


def test_a_transposed_gradient_is_named(ws):
    ex, path = solve(ws, 1, replace_once("dW_hh = da.T @ h_prev", "dW_hh = h_prev.T @ da"))
    result = check_file(ex, path, FAST)
    assert result.status == "fail"
    assert result.details == [
        "dW_hh is transposed: you returned dW_hhᵀ; it should be (H, H) = (5, 5), the layout "
        "of what it is the gradient of"]


def test_a_wrong_shape_and_a_transposed_rectangle_are_told_apart(ws):
    ex, path = solve(ws, 1, lambda s: s.replace("dW_ih = da.T @ x ", "dW_ih = x.T @ da ")
                     .replace("db = da.sum(axis=0)", "db = da.sum(axis=0, keepdims=True)"))
    details = check_file(ex, path, FAST).details
    assert details[0].startswith("dW_ih is transposed: you returned dW_ihᵀ; it should be "
                                 "(H, I) = (5, 4)")
    assert "db_ih has the right numbers but shape (1, 5); it should be (H,) = (5,)" in details


def test_a_wrong_shape_is_named_in_the_cases_dimensions(ws):
    ex, path = solve(ws, 1, replace_once("db = da.sum(axis=0)", "db = da.sum(axis=1)"))
    assert "db_ih has shape (3,) = (B,); it should be (H,) = (5,)" in check_file(
        ex, path, FAST).details


def test_the_sequence_exercise_says_from_which_step_the_gradient_goes_wrong(ws):
    # the recurrence dropped for the last two steps: only t = 6 (T) is still right
    ex, path = solve(ws, 2, replace_once("dh_t = dh[t] + dh_next",
                                         "dh_t = dh[t] + (dh_next if t < T - 2 else 0)"))
    result = check_file(ex, path, FAST)
    assert result.summary.startswith("02_rnn_sequence.py: 7 of 8 results wrong on the first "
                                     "case (T=6, B=2, I=3, H=4)")
    norms = [d for d in result.details if d.startswith("dh_norms")]
    assert norms and norms[0].startswith(
        "dh_norms is wrong from t = 5 back to t = 1 (right at t = 6); at t = 5 expected")


def test_a_wrong_forward_step_is_found_from_its_first_step(ws):
    ex, path = solve(ws, 2, replace_once("for x_t in x:", "for x_t in x[::-1]:"))
    details = check_file(ex, path, FAST).details
    assert details[0].startswith("h is wrong from t = 1 on")


def test_a_wrong_gate_is_named_and_finite_differences_blame_the_backward(ws):
    ex, path = solve(ws, 4, replace_once("do = dh * tc * o * (1.0 - o)", "do = dh * tc * o"))
    details = check_file(ex, path, FAST).details
    line = next(d for d in details if d.startswith("dW_ih"))
    assert line.startswith("dW_ih is wrong in the block of gate o (rows 12:16)")
    assert "it disagrees with finite differences of your forward too" in line
    assert not any(d.startswith(("h ", "c ")) for d in details)    # the forward is right


def test_finite_differences_point_at_the_forward_when_the_backward_matches_it(ws):
    # the forward forgets b_hh and the backward agrees (db_hh = 0): the backward is consistent
    ex, path = solve(ws, 1, lambda s: s.replace("+ h_prev @ W_hh.T + b_hh)", "+ h_prev @ W_hh.T)")
                     .replace("return dx, dh_prev, dW_ih, dW_hh, db, db.copy()",
                              "return dx, dh_prev, dW_ih, dW_hh, db, 0 * db"))
    details = check_file(ex, path, FAST).details
    assert details[0].startswith("h is wrong")
    db_hh = next(d for d in details if d.startswith("db_hh"))
    assert db_hh.endswith("it does agree with finite differences of your forward, so look at "
                          "the forward first")


def line_of(path, snippet):
    return next(i for i, s in enumerate(path.read_text().splitlines(), 1) if snippet in s)


def one_line(result):
    assert result.status == "error"
    assert "\n" not in result.summary and result.details == []
    return result.summary


@pytest.mark.parametrize("body, stuck_at", [
    ("    while True:\n        pass\n", ("while True:", "pass")),       # the CPU-time limit
    ("    import time\n    time.sleep(60)\n", ("time.sleep(60)",)),      # the wall clock
])
def test_an_endless_function_is_stopped_and_reported_in_one_line(ws, body, stuck_at):
    path = ws.file(BY_NUMBER[1])
    path.write_text(stub_with(body))
    start = time.monotonic()
    line = one_line(check_file(BY_NUMBER[1], path, FAST))
    assert time.monotonic() - start < 6
    assert line.startswith("01_rnn_step.py:")
    assert line.endswith("in rnn_step_forward(): stopped after 1 s (the time limit): an "
                         "endless loop?")
    lineno = int(line.split(":")[1])
    assert path.read_text().splitlines()[lineno - 1].strip() in stuck_at


def test_a_crash_is_reported_with_its_line(ws):
    path = ws.file(BY_NUMBER[1])
    path.write_text(stub_with("    return x @ W_hh\n"))
    result = check_file(BY_NUMBER[1], path, FAST)
    n = line_of(path, "x @ W_hh")
    assert one_line(result).startswith(
        f"01_rnn_step.py:{n}: in rnn_step_forward(): ValueError: matmul")
    assert result.source == "return x @ W_hh"              # quoted by the screen


def test_a_syntax_error_is_reported_with_its_line(ws):
    path = ws.file(BY_NUMBER[1])
    path.write_text(stub_with("    return x @@ W_hh\n"))
    n = line_of(path, "@@")
    assert one_line(check_file(BY_NUMBER[1], path, FAST)) == (
        f"01_rnn_step.py:{n}: SyntaxError: invalid syntax")


def test_a_memory_blow_up_is_reported_in_one_line(ws):
    path = ws.file(BY_NUMBER[1])
    path.write_text(stub_with("    kept = []\n    while True:\n"
                              "        kept.append(np.ones(1 << 20))\n"))
    line = one_line(check_file(BY_NUMBER[1], path, Limits(seconds=5, memory_bytes=256 << 20)))
    n = line_of(path, "np.ones")
    assert line == (f"01_rnn_step.py:{n}: in rnn_step_forward(): ran out of memory (the "
                    "limit is 256 MiB)")


def test_wrong_number_of_return_values_is_named(ws):
    path = ws.file(BY_NUMBER[1])
    path.write_text(stub_with("    return np.tanh(x @ W_ih.T)\n"))
    assert one_line(check_file(BY_NUMBER[1], path, FAST)) == (
        "01_rnn_step.py: rnn_step_forward() returned one ndarray; expected 2: h, cache")


def test_the_learners_output_is_kept_cleaned_and_its_processes_do_not_survive(ws, tmp_path):
    pid_file = tmp_path / "pid"
    path = ws.file(BY_NUMBER[1])
    path.write_text(stub_with(
        "    import os, time\n"
        "    print('\\x1b[2Jhello from the learner')\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        f"    open({str(pid_file)!r}, 'w').write(str(pid))\n"
        "    raise ValueError('boom')\n"))
    result = check_file(BY_NUMBER[1], path, FAST)
    assert "ValueError: boom" in result.summary
    lines = result.lines()
    assert "    ␛[2Jhello from the learner" in lines
    assert not any("\x1b" in s for s in lines)
    pid = int(pid_file.read_text())
    for _ in range(50):                      # the killed grandchild is reaped by init
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the learner's forked process outlived the check")


def test_cli_exit_codes_and_progress_record(ws, capsys, data_dir):
    folder = str(ws.path)
    assert cli.main(["exercises", "check", "1", "--dir", folder]) == 1
    assert "not written yet" in capsys.readouterr().out
    solve(ws, 1)
    assert cli.main(["exercises", "--dir", folder, "check", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("01_rnn_step.py: passed: all 7 results match the engine")
    assert cli.main(["exercises", "check", "--dir", folder, "--time-limit", "2"]) == 1
    assert capsys.readouterr().out.rstrip().endswith("1 of 5 exercises pass")
    assert cli.main(["exercises", "check", "9"]) == 2
    assert "must be between 1 and 5" in capsys.readouterr().err
    assert cli.main(["exercises", "check", "--dir", str(ws.path / "nowhere")]) == 1
    assert "run `rnn-tutor exercises --dir" in capsys.readouterr().err
    saved = json.loads((data_dir / "exercises.json").read_text())["exercises"]
    assert saved["1"]["passed"] is True and saved["1"]["checks"] == 3
    assert saved["2"]["passed"] is False and saved["2"]["status"] == "todo"


def test_cli_opens_the_default_folder_and_says_where(capsys, data_dir):
    assert cli.main(["exercises"]) == 0
    out = capsys.readouterr().out
    folder = data_dir / "exercises"
    assert out.splitlines()[0] == f"Your exercises are in {folder}"
    assert sorted(p.name for p in folder.iterdir()) == [e.file for e in EXERCISES]
    (folder / "01_rnn_step.py").write_text("# mine\n")
    assert cli.main(["exercises"]) == 0
    assert "new" not in capsys.readouterr().out
    assert (folder / "01_rnn_step.py").read_text() == "# mine\n"


def test_a_corrupt_record_starts_fresh_with_one_line(data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "exercises.json").write_text("{not json")
    record, notice = ExerciseRecord.load()
    assert record.entries == {} and "could not be read" in notice and "\n" not in notice
    record.record_check(2, "pass", "02: passed")
    record.record_check(2, "fail", "02: wrong")
    assert record.save() is None
    again, notice = ExerciseRecord.load()
    assert notice is None
    assert again.entry(2)["passed"] is True and again.entry(2)["checks"] == 2


def test_solutions_and_templates_ship_in_the_package():
    root = Path(__file__).resolve().parents[1]
    pyproject = (root / "pyproject.toml").read_text()
    assert '"tutor.exercises" = ["templates/*.py"]' in pyproject
    assert '"tutor.exercises"' in pyproject.split("packages = [", 1)[1].split("]", 1)[0]
    for ex in EXERCISES:
        assert "raise NotImplementedError" in ex.template
        assert all(f"def {fn}(" in ex.solution for fn in ex.functions)


def test_the_child_sees_only_the_file_and_its_inputs(ws, data_dir):
    path = ws.file(BY_NUMBER[1])
    path.write_text(stub_with(
        "    import os, sys\n"
        "    raise ValueError(f'{sorted(os.environ)} {os.getcwd()} {sys.path[0]}')\n"))
    summary = check_file(BY_NUMBER[1], path, FAST).summary
    assert "RNN_TUTOR_DATA_DIR" not in summary and "PYTHONPATH" not in summary
    assert str(ws.path) not in summary.split("] ", 1)[1]       # neither cwd nor sys.path


def test_exercise_modules_load_neither_textual_nor_numpy_until_checking():
    import subprocess
    import sys
    code = ("import sys, tutor.exercises.catalog, tutor.exercises.command, "
            "tutor.exercises.workspace, tutor.exercises.record\n"
            "print(sorted(m for m in ('numpy', 'textual', 'rich') if m in sys.modules))\n"
            "import tutor.exercises.check\n"
            "print('textual' in sys.modules, 'rich' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[:2] == ["[]", "False False"]
