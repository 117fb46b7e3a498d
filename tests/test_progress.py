"""Progress store: round trip, completion rule, recovery from bad files and disks, atomic saves."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tutor.lessons import load_lessons
from tutor.progress import ENV_VAR, Progress, data_dir, progress_path

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "data"))
    return tmp_path / "data" / "progress.json"


def lesson_file(folder: Path, name: str, checkpoint_ids: list[str]):
    blocks = "".join(
        f"```checkpoint\nid: {qid}\nask: Q?\n+ Yes\n  > Right.\n- No\n  > Wrong.\n```\n"
        for qid in checkpoint_ids)
    (folder / name).write_text(f"---\ntitle: {name}\n---\nText.\n\n{blocks}", encoding="utf-8")


@pytest.fixture
def two_lessons(tmp_path):
    folder = tmp_path / "lessons"
    folder.mkdir()
    lesson_file(folder, "01-quiz.md", ["first", "second"])
    lesson_file(folder, "02-reading.md", [])
    return load_lessons(folder).lessons


def fill(progress: Progress) -> None:
    progress.set_last("quiz")
    progress.record_answer("quiz", "first", 1, False)
    progress.record_answer("quiz", "first", 0, True)
    progress.record_answer("quiz", "second", 2, False)
    progress.mark_read("reading")
    progress.mark_complete("reading")


def test_data_dir_comes_from_the_environment_or_platformdirs(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "x"))
    assert data_dir() == tmp_path / "x"
    assert progress_path() == tmp_path / "x" / "progress.json"
    monkeypatch.delenv(ENV_VAR)
    assert data_dir().name == "rnn-tutor"


def test_first_run_has_no_notice_and_creates_nothing_but_the_folder(store):
    progress, notice = Progress.load()
    assert notice is None
    assert progress.path == store
    assert progress.last is None
    assert store.parent.is_dir() and not store.exists()
    assert list(store.parent.iterdir()) == []     # the write probe cleaned up after itself


def test_round_trip(store):
    progress, _ = Progress.load()
    fill(progress)
    assert progress.save() is None

    again, notice = Progress.load()
    assert notice is None
    assert again.last == "quiz"
    assert again.answer("quiz", "first") == {"choice": 0, "correct": True, "tries": 2, "solved": True}
    assert again.answer("quiz", "second") == {"choice": 2, "correct": False, "tries": 1, "solved": False}
    assert again.answer("quiz", "third") is None
    assert again.is_read("reading") and not again.is_read("quiz")
    assert again.completed == {"reading"}
    assert again.to_json() == progress.to_json()
    on_disk = json.loads(store.read_text())
    assert on_disk["answers"]["quiz"]["first"]["choice"] == 0
    assert [p.name for p in store.parent.iterdir()] == ["progress.json"]


def test_answer_returns_a_copy(store):
    progress, _ = Progress.load()
    progress.record_answer("quiz", "first", 0, True)
    progress.answer("quiz", "first")["choice"] = 99
    assert progress.answer("quiz", "first")["choice"] == 0


def test_completion_rule(store, two_lessons):
    quiz, reading = two_lessons
    progress, _ = Progress.load()
    assert not progress.is_complete(quiz) and not progress.is_complete(reading)

    progress.record_answer(quiz.slug, "first", 1, False)
    progress.record_answer(quiz.slug, "first", 0, True)
    assert not progress.is_complete(quiz)            # "second" still unanswered
    progress.record_answer(quiz.slug, "second", 1, False)
    assert not progress.is_complete(quiz)            # answered, but wrongly
    progress.mark_read(quiz.slug)
    assert not progress.is_complete(quiz)            # reading does not complete a quiz
    progress.record_answer(quiz.slug, "second", 0, True)
    assert progress.is_complete(quiz)

    # Picking a wrong option afterwards, to read its feedback, does not undo the completion.
    progress.record_answer(quiz.slug, "second", 1, False)
    assert progress.answer(quiz.slug, "second")["correct"] is False
    assert progress.is_complete(quiz)

    progress.mark_read(reading.slug)
    assert progress.is_complete(reading)
    assert progress.update_completion(reading) is True
    assert progress.update_completion(reading) is False
    assert progress.completed == {reading.slug}


def test_a_recorded_completion_survives_a_new_checkpoint(store, two_lessons, tmp_path):
    quiz, _ = two_lessons
    progress, _ = Progress.load()
    progress.mark_complete(quiz.slug)
    assert progress.is_complete(quiz)


def test_reset_clears_memory_and_file(store):
    progress, _ = Progress.load()
    fill(progress)
    progress.save()
    assert progress.reset() is None
    assert progress.last is None and progress.completed == frozenset()
    assert progress.answer("quiz", "first") is None
    again, notice = Progress.load()
    assert notice is None
    assert again.to_json() == Progress(store).to_json()


# ---- bad files ------------------------------------------------------------------------------------

def saved_text(store: Path) -> str:
    progress = Progress(store)
    fill(progress)
    assert progress.save() is None
    return store.read_text()


def corrupt_copies(store: Path) -> list[Path]:
    return sorted(store.parent.glob("progress.json.corrupt-*"))


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],            # truncated
    lambda text: "",                                # empty
    lambda text: "\xff\xfe garbage",                # not UTF-8 once encoded as latin-1
    lambda text: "[1, 2, 3]",                       # JSON, but not an object
    lambda text: "[" * 100000,                      # deeply nested
])
def test_an_unusable_file_is_moved_aside_and_fresh_progress_starts(store, damage):
    bad = damage(saved_text(store))
    store.write_bytes(bad.encode("latin-1"))

    progress, notice = Progress.load()

    assert notice and "\n" not in notice
    moved = corrupt_copies(store)
    assert len(moved) == 1 and str(moved[0]) in notice
    assert moved[0].read_bytes() == bad.encode("latin-1")      # nothing is lost
    assert not store.exists()
    assert progress.last is None
    progress.set_last("quiz")
    assert progress.save() is None
    again, notice = Progress.load()
    assert notice is None and again.last == "quiz"


def test_two_corrupt_files_in_the_same_second_get_distinct_names(store):
    for _ in range(2):
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text("{broken")
        Progress.load()
    assert len(corrupt_copies(store)) == 2


def test_wrong_types_keep_what_is_valid_and_copy_the_original_aside(store):
    store.parent.mkdir(parents=True)
    original = {
        "version": 1,
        "last": 42,
        "completed": ["good-one", 7, "Bad Slug", "also-good"],
        "read": "everything",
        "answers": {
            "quiz": {
                "first": {"choice": 0, "correct": True, "tries": 3},
                "second": {"choice": "zero", "correct": True, "tries": 1},
                "third": {"choice": 1, "correct": "yes", "tries": 1},
                "fourth": {"choice": True, "correct": False, "tries": 1},
                "fifth": {"choice": 1, "correct": False, "tries": 0},
                "sixth": [1, True, 1],
            },
            "not a slug": {"q": {"choice": 0, "correct": True, "tries": 1}},
            "other": "nope",
        },
        "surprise": {"x": 1},
    }
    store.write_text(json.dumps(original))

    progress, notice = Progress.load()

    assert notice and "\n" not in notice and "dropped" in notice
    for part in ("last lesson", "2 completed entries", "read", "7 answers", "'surprise'"):
        assert part in notice, part
    assert progress.last is None
    assert progress.completed == {"good-one", "also-good"}
    assert progress.answer("quiz", "first") == {"choice": 0, "correct": True, "tries": 3,
                                                "solved": True}
    for qid in ("second", "third", "fourth", "fifth", "sixth"):
        assert progress.answer("quiz", qid) is None
    (copy,) = corrupt_copies(store)
    assert str(copy) in notice
    assert json.loads(copy.read_text()) == original
    assert json.loads(store.read_text()) == original      # untouched until the next save


def test_a_file_from_another_version_is_kept_aside_before_it_is_overwritten(store):
    store.parent.mkdir(parents=True)
    store.write_text(json.dumps({"version": 2, "last": "quiz"}))
    progress, notice = Progress.load()
    assert "unknown version 2" in notice
    assert progress.last == "quiz"
    assert len(corrupt_copies(store)) == 1


def test_a_folder_in_place_of_the_file(store):
    store.mkdir(parents=True)
    (store / "keep.txt").write_text("mine")

    progress, notice = Progress.load()

    assert notice == f"{store} is a folder, not a progress file; progress is kept in memory for this session"
    fill(progress)
    error = progress.save()
    assert error and "\n" not in error
    assert progress.answer("quiz", "first")["correct"] is True    # still held in memory
    assert (store / "keep.txt").read_text() == "mine"


def test_an_unreadable_file_is_never_overwritten(store):
    store.parent.mkdir(parents=True)
    store.symlink_to(store)               # a symlink loop: unreadable even for root

    progress, notice = Progress.load()

    assert notice.startswith(f"cannot read {store} (")
    assert notice.endswith("progress is kept in memory for this session")
    fill(progress)
    assert "not saved this session" in progress.save()
    assert store.is_symlink() and os.readlink(store) == str(store)


def test_an_unwritable_data_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, so nothing can be created under it, not even by root")
    monkeypatch.setenv(ENV_VAR, str(blocker / "sub"))

    progress, notice = Progress.load()

    assert notice.startswith(f"cannot save progress in {blocker / 'sub'} (")
    assert notice.endswith("progress is kept in memory for this session")
    assert "\n" not in notice
    fill(progress)
    error = progress.save()
    assert error.startswith(f"could not save progress to {blocker / 'sub' / 'progress.json'}")
    assert progress.last == "quiz"
    assert progress.reset() is not None
    assert blocker.read_text().startswith("a file")


def test_save_failure_later_in_the_session_keeps_working(store):
    progress, _ = Progress.load()
    fill(progress)
    assert progress.save() is None
    store.unlink()
    store.mkdir()                                  # the disk changes under us
    progress.set_last("reading")
    assert progress.save() is not None
    assert progress.last == "reading"
    store.rmdir()
    assert progress.save() is None                 # and recovers when the path is usable again
    assert Progress.load()[0].last == "reading"


def test_stale_temp_files_from_a_killed_save_are_removed(store):
    store.parent.mkdir(parents=True)
    old = store.parent / ".progress-old.tmp"
    new = store.parent / ".progress-new.tmp"
    old.write_text("{")
    new.write_text("{")
    os.utime(old, (time.time() - 3600,) * 2)
    Progress.load()
    assert not old.exists()
    assert new.exists()          # may belong to a tutor saving right now


# ---- atomic saves under SIGKILL -------------------------------------------------------------------

SAVER = """
import sys
from pathlib import Path
from tutor.progress import Progress

progress = Progress(Path(sys.argv[1]))
n = 0
while True:
    n += 1
    for q in range(300):
        progress.record_answer(f"lesson-{n % 40}", f"q{q}", q % 4, q % 3 == 0)
    progress.set_last(f"lesson-{n}")
    assert progress.save() is None
    print(n, flush=True)
"""


def test_killing_the_process_mid_save_never_corrupts_the_file(tmp_path):
    path = tmp_path / "progress.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(0)
    saves_seen = 0
    for _ in range(20):
        child = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], env=env,
                                 stdout=subprocess.PIPE, text=True)
        first = child.stdout.readline()           # at least one save has finished
        assert first.strip().isdigit()
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()

        data = json.loads(path.read_text())       # parses: the old file or the new, never half
        saves_seen = max(saves_seen, int(data["last"].removeprefix("lesson-")))
        progress, notice = Progress.load(path)
        assert notice is None
        assert progress.last == data["last"]
    assert saves_seen > 1


def prediction_lesson(folder: Path):
    (folder / "01-predict.md").write_text("""---
title: Predict
cell: rnn
task: adding
---
```predict
id: ratio
ask: How small?
measure: grad_ratio at step 0
+ Tiny.
  = below 1e-6
  > Right.
- Not tiny.
  = above 1e-6
  > No.
```
```predict
id: peak
ask: How large?
measure: max_grad_norm at step 5
+ Huge.
  = above 100
  > Right.
- Small.
  = below 100
  > No.
```
""", encoding="utf-8")
    return load_lessons(folder).lessons[0]


def test_a_prediction_and_its_graded_result_survive_a_restart(store, tmp_path):
    lesson = prediction_lesson(tmp_path)
    progress, _ = Progress.load()
    progress.record_prediction("predict", "ratio", 1)           # committed, not yet run
    assert progress.answer("predict", "ratio") == {
        "choice": 1, "correct": False, "tries": 1, "solved": False}
    assert not progress.is_complete(lesson)
    progress.record_prediction("predict", "ratio", 1, measured=3.2e-12, correct=False)
    progress.record_prediction("predict", "peak", 0, measured=float("inf"), correct=True)
    progress.record_prediction("predict", "peak", 1)             # a later commit cannot undo it
    assert progress.save() is None
    raw = json.loads(store.read_text(encoding="utf-8"))           # strict JSON: no Infinity
    assert raw["answers"]["predict"]["peak"]["measured"] == "inf"

    again, notice = Progress.load()
    assert notice is None
    assert again.answer("predict", "ratio") == {
        "choice": 1, "correct": False, "tries": 1, "solved": True, "measured": 3.2e-12}
    assert again.answer("predict", "peak") == {
        "choice": 0, "correct": True, "tries": 1, "solved": True, "measured": float("inf")}
    # A graded prediction is done whether it was right or not: the learner committed and saw.
    assert again.is_complete(lesson)


@pytest.mark.parametrize("measured", ["lots", None, True, float("nan"), [1]])
def test_a_bad_measured_value_drops_that_answer_with_a_notice_and_keeps_the_rest(store, measured):
    store.parent.mkdir(parents=True)
    good = {"choice": 0, "correct": True, "tries": 1, "solved": True, "measured": 2.5}
    bad = dict(good, measured=measured)
    text = json.dumps({"version": 1, "answers": {"predict": {"ratio": bad, "peak": good}}})
    store.write_text(text.replace("NaN", '"nan"') if measured != measured else text,
                     encoding="utf-8")
    progress, notice = Progress.load()
    assert "dropped (1 answers)" in notice and "copied to" in notice
    assert progress.answer("predict", "ratio") is None
    assert progress.answer("predict", "peak") == good
