"""A run anyone can reproduce or export: the lab's command line really gives the same losses,
and the export holds every step with `rnn-tutor train`'s fields (real engine, real worker)."""
from __future__ import annotations

import dataclasses
import json
import shlex
import time

from tutor import cli
from tutor.engine import Settings
from tutor.lab.modes import TrainLab
from tutor.lab.reproduce import command_args, command_line
from tutor.lab.session import LabSession
from tutor.ui.app import TutorApp
from tutor.ui.host import HostApp
from tutor.ui.lab import LabPane
from tutor.ui.reproduce_screen import ReproduceScreen

from test_app_support import data_dir, lessons_dir, started, wait_for  # noqa: F401

STEPS = 25
ODD = Settings(cell="gru", task="remember", seq_len=7, hidden=6, batch=5, lr=0.0123,
               optimizer="momentum", clip=0.7, clip_mode="value", init="orthogonal", radius=0.9,
               forget_bias=0.5, reverse_input=True, seed=12345, dtype="float64",
               freeze_head=True, truncate=3)
FAST = Settings(cell="rnn", task="echo", seq_len=10, hidden=8, batch=8)


def lab_losses(settings: Settings, steps: int) -> list[float]:
    """Train a lab session until its budget ends the run; the losses it kept."""
    session = LabSession(settings, budget=steps)
    try:
        session.start()
        deadline = time.monotonic() + 30
        while session.ended is None:
            assert time.monotonic() < deadline, "timed out"
            session.poll()
            time.sleep(0.02)
        return list(session.history.runs["main"].log.loss)
    finally:
        session.close()


def train_records(argv: list[str], capsys) -> list[dict]:
    assert cli.main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [line for line in lines if not line.get("final")]


def test_the_command_line_reproduces_the_runs_losses(capsys):
    unchanged = [f.name for f in dataclasses.fields(Settings)
                 if getattr(ODD, f.name) == getattr(Settings(), f.name)]
    assert not unchanged, f"give ODD a non-default {unchanged} so the round trip checks it"
    line = command_line(ODD)
    argv = shlex.split(line)
    assert argv[:2] == ["rnn-tutor", "lab"]
    args = cli.build_parser().parse_args(argv[1:])
    assert cli.settings_from(args) == ODD                # every setting comes back
    original = lab_losses(ODD, STEPS)
    assert len(original) == STEPS
    assert lab_losses(cli.settings_from(args), STEPS) == original
    trained = train_records(["train", *command_args(ODD), "--steps", str(STEPS)], capsys)
    assert [r["loss"] for r in trained] == original


async def test_reproduce_shows_the_command_and_copies_it():
    app = HostApp(TrainLab(FAST), "rnn-tutor lab")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("R")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ReproduceScreen) and screen.command == command_line(FAST)
        await pilot.press("c")
        await pilot.pause()
        assert app.clipboard == command_line(FAST)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ReproduceScreen)


async def test_export_writes_settings_every_step_and_a_screenshot(data_dir, capsys):  # noqa: F811
    app = HostApp(TrainLab(FAST, budget=STEPS), "rnn-tutor lab")
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(LabPane)
        await wait_for(pilot, lambda: pane.session.ended == "budget", what="the budget")
        await pilot.press("E")
        await wait_for(pilot, lambda: "exported to" in pane.status_text, what="the export")
        status = pane.status_text
    folders = list((data_dir / "runs").iterdir())
    assert len(folders) == 1 and folders[0].name in status.replace("\n", "")
    folder = folders[0]
    info = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
    assert info["command"] == command_line(FAST) and info["settings"]["cell"] == "rnn"
    steps = [json.loads(line) for line in (folder / "steps.jsonl").read_text().splitlines()]
    trained = train_records(["train", *command_args(FAST), "--steps", str(STEPS)], capsys)
    assert [s["step"] for s in steps] == list(range(1, STEPS + 1))
    assert [list(s) for s in steps] == [list(t) for t in trained]     # the same fields
    assert [s["loss"] for s in steps] == [t["loss"] for t in trained]
    assert steps[0]["grad_norm_per_step"] == trained[0]["grad_norm_per_step"]
    assert all(steps[0][name] is not None for name in trained[0] if name.endswith("_per_step")
               and trained[0][name] is not None)          # step 1 keeps every array it had
    assert (folder / "lab.svg").read_text(encoding="utf-8").lstrip().startswith("<svg")


async def test_the_lab_off_screen_is_held_and_picks_up_when_shown(lessons_dir, data_dir,  # noqa: F811
                                                                   monkeypatch):
    monkeypatch.setattr("tutor.lab.session.OFF_SCREEN_S", 0.5)
    app = TutorApp(lessons_dir=lessons_dir)
    async with app.run_test(size=(80, 24)) as pilot:              # the lesson shows, not the lab
        await started(pilot)
        pane = app.lab_pane
        assert not pane.on_screen
        await wait_for(pilot, lambda: pane.session.held, what="the hold")
        await pilot.pause(0.5)
        held_at = pane.history.runs["main"].step
        await pilot.pause(0.5)
        assert pane.history.runs["main"].step == held_at
        await pilot.press("v")                                     # show the lab
        await wait_for(pilot, lambda: not pane.session.held
                       and pane.history.runs["main"].step > held_at, what="training again")
        assert pane.on_screen


def test_compare_mode_exports_one_steps_file_per_cell_and_says_how_to_reproduce(tmp_path):
    from tutor.lab.export import export_run, new_run_folder
    from tutor.lab.reproduce import caveats

    session = LabSession(FAST, budget=10)
    try:
        session.toggle_compare()
        session.start()
        deadline = time.monotonic() + 30
        while session.ended is None:
            assert time.monotonic() < deadline, "timed out"
            session.poll()
            time.sleep(0.02)
        folder = new_run_folder(tmp_path, session.settings)
        export_run(session, folder)
    finally:
        session.close()
    assert any("press x" in note for note in caveats(session))
    info = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
    assert info["compare"] and set(info["runs"]) == {"rnn", "lstm", "gru"}
    for cell in ("rnn", "lstm", "gru"):
        lines = (folder / f"steps-{cell}.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line)["step"] for line in lines] == list(range(1, 11))
    taken = new_run_folder(tmp_path, session.settings, now=0)
    taken.mkdir(parents=True)                  # two exports in the same second
    assert new_run_folder(tmp_path, session.settings, now=0).name == taken.name + "-2"
