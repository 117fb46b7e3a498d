"""The lab pane through Textual's Pilot, with the real engine training in the real worker."""
from __future__ import annotations

import math
import multiprocessing
import os
import time

import pytest
from textual_plotext.plot import Plot

from tutor.engine import Settings
from tutor.lab.modes import TrainLab
from tutor.ui.host import HostApp
from tutor.ui.lab_charts import GatesChart, GradNormChart, LossChart
from tutor.ui.help_screen import HelpScreen
from tutor.ui.lab import LabPane
from tutor.ui.lab_keys import LAB_BINDINGS
from tutor.ui.settings_screen import SettingsScreen

FAST = Settings(cell="rnn", task="echo", seq_len=10, hidden=8, batch=8)
DIVERGES = Settings(cell="irnn", radius=1.1, optimizer="sgd", lr=0.01)


async def until(pilot, condition, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def lab_app(settings, **kwargs) -> HostApp:
    return HostApp(TrainLab(settings), "rnn-tutor lab", **kwargs)


def pane_of(app) -> LabPane:
    return app.query_one(LabPane)


def main_run(pane):
    return pane.history.runs["main"]


async def trained(pilot, pane, steps: int = 3):
    """Wait until the current generation has reported `steps` steps."""
    gen = pane.session.generation
    await until(pilot, lambda: pane.session.started and pane.history.runs
                and pane.history.generation == pane.session.generation
                and all(r.step >= steps for r in pane.history.runs.values()),
                what=f"{steps} steps of generation {gen}")


def worker_pids() -> list[int]:
    """Children of this process that are multiprocessing spawn workers (not the resource
    tracker), read from /proc."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != me or fields[0] == "Z":
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if b"spawn_main" in cmd:
            found.append(int(entry))
    return found


async def test_cell_keys_start_fresh_runs_of_that_cell():
    app = lab_app(FAST)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await trained(pilot, pane)
        for key, cell in (("3", "lstm"), ("4", "gru"), ("2", "irnn"), ("1", "rnn")):
            gen = pane.session.generation
            await pilot.press(key)
            assert pane.settings.cell == cell
            assert pane.session.generation == gen + 1
            await trained(pilot, pane)
            assert main_run(pane).settings.cell == cell
            assert f"{cell} echo T=10" in pane.status_text
        # the previous run's loss stays as a labelled grey curve
        assert pane.history.ghost is not None and pane.history.ghost[0] == "irnn"


async def test_clip_keys_apply_live_and_mark_the_chart():
    app = lab_app(FAST)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await trained(pilot, pane, 5)
        gen = pane.session.generation
        await pilot.press("c")
        assert pane.settings.clip == 1.0 and "clip norm 1" in pane.status_text
        await pilot.press("right_square_bracket")
        assert pane.settings.clip == 2.0
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert pane.settings.clip == 0.5
        assert pane.session.generation == gen               # no restart
        await until(pilot, lambda: len(main_run(pane).events) == 4, what="four markers")
        steps = [s for s, _ in main_run(pane).events]
        assert steps == sorted(steps) and steps[0] >= 5
        assert main_run(pane).events[-1][1] == "clip norm 0.5"
        await pilot.press("c")
        assert not pane.settings.clipping and "clip off" in pane.status_text
        await pilot.press("c")
        assert pane.settings.clip == 0.5                     # the threshold is remembered
        while not pane.query_one(GradNormChart).display:     # the ‖∇‖ chart shows the marker
            pane.next_chart()
        await until(pilot, lambda: len(main_run(pane).events) == 6, what="six markers")
        last = main_run(pane).events[-1][0]
        await until(pilot, lambda: any(f"@{last}" in c.plain_lines[0]
                                       for c in pane.visible_charts if c.plain_lines),
                    what="the marker's label")


async def test_seq_len_and_lr_keys_restart_with_new_values():
    app = lab_app(FAST)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await trained(pilot, pane)
        gen = pane.session.generation
        await pilot.press("T")
        assert pane.settings.seq_len == 15
        await pilot.press("t", "t")
        assert pane.settings.seq_len == 5
        await pilot.press("plus")
        assert pane.settings.lr == pytest.approx(0.02)
        await pilot.press("minus", "minus")
        assert pane.settings.lr == pytest.approx(0.005)
        assert pane.session.generation == gen + 6
        await trained(pilot, pane)
        run = main_run(pane)
        assert run.settings.seq_len == 5 and run.settings.lr == pytest.approx(0.005)
        assert len(run.latest["grad_norm_per_step"]) == 5


async def test_seed_preset_reset_pace_keys():
    app = lab_app(FAST)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await trained(pilot, pane)
        await pilot.press("d")
        assert pane.settings.seed == 1 and "seed=1" in pane.status_text
        await pilot.press("3", "T")
        assert pane.settings != pane.preset
        await pilot.press("0")
        assert pane.settings == pane.preset == FAST
        gen = pane.session.generation
        await trained(pilot, pane, 20)
        await pilot.press("r")
        assert pane.session.generation == gen + 1 and pane.settings == FAST
        await trained(pilot, pane, 1)
        assert main_run(pane).step < 20 or main_run(pane).loss.count >= 1
        paces = []
        for _ in range(4):
            await pilot.press("f")
            paces.append(pane.pace)
        assert paces == [50.0, 10.0, 2.0, None]
        await pilot.press("f", "f")                           # 10 steps/s
        await trained(pilot, pane, 1)
        start = main_run(pane).step
        await pilot.pause(1.5)
        assert 5 <= main_run(pane).step - start <= 25
        assert "(pace 10)" in pane.status_text


async def test_pause_and_single_steps():
    app = lab_app(FAST, paused=True)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        assert pane.paused and "paused" in pane.status_text
        await pilot.pause(0.8)
        assert main_run(pane).step == 0
        await pilot.press("s")
        await until(pilot, lambda: main_run(pane).step == 1, what="one step")
        await pilot.press("s", "s")
        await until(pilot, lambda: main_run(pane).step == 3, what="three steps")
        await pilot.pause(0.5)
        assert main_run(pane).step == 3 and pane.paused
        await pilot.press("space")
        assert not pane.paused and "paused" not in pane.status_text
        await until(pilot, lambda: main_run(pane).step > 30, what="training")
        await pilot.press("space")
        assert pane.paused and pane.status_text.splitlines()[1].startswith("paused")
        await pilot.pause(0.5)
        held = main_run(pane).step
        await pilot.pause(0.5)
        assert main_run(pane).step == held
        await pilot.press("s")                              # s while running pauses first
        await until(pilot, lambda: main_run(pane).step == held + 1, what="one more step")


async def test_fifty_cell_switches_leave_one_worker():
    app = lab_app(FAST)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await trained(pilot, pane)
        pid = pane.session.trainer.pid
        for i in range(50):
            await pilot.press("1234"[i % 4])
        await trained(pilot, pane)
        assert pane.settings.cell == "irnn"                  # the 50th press was "2"
        assert [p.pid for p in multiprocessing.active_children()] == [pid]
        assert worker_pids() == [pid]
        pane.shutdown()                                      # and once shut down, keys
        await pilot.press("r", "3", "x")                     # start nothing new
        assert worker_pids() == [] and multiprocessing.active_children() == []
    assert multiprocessing.active_children() == []
    assert worker_pids() == []


async def test_divergence_shows_as_a_state_and_r_recovers():
    app = lab_app(DIVERGES)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: "diverged at step 2, press r to reset" in pane.status_text,
                    what="the divergence flag")
        await pilot.pause(0.6)                               # a few frames after it
        loss_chart = pane.query_one(LossChart)
        assert "diverged @2" in loss_chart.plain_lines[0]
        assert pane.session.trainer.alive
        gen = pane.session.generation
        await pilot.press("r")
        assert pane.session.generation == gen + 1
        await until(pilot, lambda: pane.history.generation == gen + 1
                    and "diverged at step 2" in pane.status_text, what="the same again")
        await pilot.press("3")                               # a sane cell trains on
        await trained(pilot, pane, 5)
        assert "diverged" not in pane.status_text
        assert math.isfinite(main_run(pane).last_loss)


async def test_no_nan_or_inf_reaches_plotext(monkeypatch):
    seen: list[float] = []

    def spy(name):
        original = getattr(Plot, name)

        def wrapper(self, *args, **kwargs):
            for arg in list(args) + [v for k, v in kwargs.items() if k not in ("color", "marker")]:
                values = arg if isinstance(arg, (list, tuple)) else [arg]
                for v in values:
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        seen.append(float(v))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(Plot, name, wrapper)

    for name in ("plot", "scatter", "horizontal_line", "vertical_line", "xlim", "ylim",
                 "xticks", "yticks", "text"):
        spy(name)
    app = lab_app(DIVERGES.replace(cell="lstm", radius=40.0, lr=1.0))
    async with app.run_test(size=(160, 45)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: "diverged at step" in pane.status_text, what="divergence")
        for chart in pane.charts:
            chart.redraw(force=True)
        assert len(pane.visible_charts) == len(pane.charts)
    assert len(seen) > 50                                     # the charts really drew
    assert all(math.isfinite(v) for v in seen)


async def test_compare_mode_overlays_three_cells_with_a_legend():
    app = lab_app(FAST)
    async with app.run_test(size=(160, 45)) as pilot:
        pane = pane_of(app)
        await pilot.press("x")
        assert pane.compare and set(pane.history.runs) == {"rnn", "lstm", "gru"}
        await trained(pilot, pane, 5)
        await pilot.pause(0.6)
        headers = [c.plain_lines[0] for c in pane.charts]
        for header in headers[:3]:
            assert "rnn" in header and "lstm" in header and "gru" in header
        assert "lstm" in headers[3] and "gru" in headers[3]   # gates: only the gated cells
        assert "rnn+lstm+gru" in pane.status_text
        await pilot.press("3")                                # a cell key leaves compare mode
        assert not pane.compare and list(pane.history.runs) == ["main"]


async def test_small_terminal_pages_through_the_charts():
    app = lab_app(FAST)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await trained(pilot, pane)
        seen = []
        for _ in range(len(pane.charts) // 2):
            shown = [type(c).__name__ for c in pane.visible_charts]
            assert len(shown) == 2
            seen += shown
            await pilot.press("g")
        assert sorted(seen) == sorted(type(c).__name__ for c in pane.charts)
        await pilot.pause(0.6)
        gates = pane.query_one(GatesChart)
        assert "has no gates" in " ".join(gates.plain_lines)


async def test_wide_terminal_shows_every_chart():
    app = lab_app(FAST.replace(cell="lstm"))
    async with app.run_test(size=(160, 45)) as pilot:
        pane = pane_of(app)
        await trained(pilot, pane)
        await pilot.pause(0.6)
        assert len(pane.visible_charts) == len(pane.charts) == 6
        gates = pane.query_one(GatesChart)
        assert "forget f" in gates.plain_lines[0] and "‖∂L/∂c_t‖" in gates.plain_lines[0]


async def test_redraws_only_changed_charts():
    app = lab_app(FAST, paused=True)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await pilot.press("s")
        await until(pilot, lambda: main_run(pane).step == 1, what="one step")
        await pilot.pause(0.6)
        builds = [c.builds for c in pane.charts]
        await pilot.pause(1.0)                                # paused: nothing new to draw
        assert [c.builds for c in pane.charts] == builds
        await pilot.press("s")
        await until(pilot, lambda: main_run(pane).step == 2, what="a second step")
        await pilot.pause(0.6)
        after = [c.builds for c in pane.charts]
        shown = [c.display for c in pane.charts]
        assert all(a > b for a, b, v in zip(after, builds, shown) if v)
        assert all(a == b for a, b, v in zip(after, builds, shown) if not v)


async def test_settings_panel_applies_validates_and_cancels():
    app = lab_app(FAST)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await trained(pilot, pane)
        await pilot.press("e")
        assert isinstance(app.screen, SettingsScreen)
        await pilot.press("d", "x")                          # lab keys are off under the panel
        assert pane.settings.seed == 0 and not pane.compare
        await pilot.press("right")                            # cell rnn -> irnn
        await pilot.press("down", "down")                     # task, then T
        field = app.screen.query_one("#field-seq_len")
        assert app.screen.focused is field
        field.value = "abc"
        await pilot.press("enter")
        assert isinstance(app.screen, SettingsScreen)
        assert "sequence length must be a whole number, not 'abc'" in app.screen.error
        field.value = "5000"
        await pilot.press("enter")
        assert "sequence length must be between 1 and 2000, not 5000" in app.screen.error
        field.value = "20"
        app.screen.query_one("#field-clip").value = "0.5"
        await pilot.press("enter")
        assert not isinstance(app.screen, SettingsScreen)
        assert pane.settings == FAST.replace(cell="irnn", seq_len=20, clip=0.5)
        await trained(pilot, pane)
        assert len(main_run(pane).latest["grad_norm_per_step"]) == 20
        await pilot.press("e")
        app.screen.query_one("#field-lr").value = "7"
        await pilot.press("escape")
        assert pane.settings.lr == FAST.lr


async def test_every_lab_binding_has_a_description_and_quit_keys_work():
    assert all(b.description for b in LAB_BINDINGS)
    keys = {k for b in LAB_BINDINGS for k in b.key.split(",")}
    assert {"space", "r", "1", "2", "3", "4", "c"} <= keys
    app = lab_app(FAST)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)            # the lab's keys, not Textual's
        shown = "\n".join(s.text for s in app.screen._compositor.render_strips())
        for binding in LAB_BINDINGS:
            assert binding.description in shown, binding.description
        assert "Focus Next" not in shown and "Quit" in shown
        await pilot.press("space")                           # lab keys are off under the list
        assert not pane_of(app).paused
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, HelpScreen)
    for quit_key in ("q", "ctrl+c", "ctrl+q"):
        app = lab_app(FAST)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            await pilot.press(quit_key)
            await pilot.pause(0.2)
            assert not app.is_running
    assert worker_pids() == []


async def test_max_steps_stops_the_run_and_says_so():
    app = lab_app(FAST, max_steps=30)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: "stopped after 30 steps" in pane.status_text, what="stop")
        await pilot.pause(0.4)
        assert main_run(pane).step == 30
        await pilot.press("r")                              # a reset runs 30 more
        await until(pilot, lambda: pane.history.generation == pane.session.generation
                    and main_run(pane).step == 30, what="30 steps again")


async def test_too_small_shows_a_message_and_recovers():
    app = lab_app(FAST)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await pilot.resize_terminal(26, 8)
        await pilot.pause(0.3)
        assert pane.has_class("-too-small")
        assert pane.query_one("#lab-too-small").display
        assert not pane.visible_charts or not pane.query_one("#lab-charts").display
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert not pane.has_class("-too-small") and len(pane.visible_charts) == 2


@pytest.mark.parametrize("kwargs,message", [
    ({"fps": 0}, "--fps must be above 0 and at most 60"),
    ({"max_steps": -3}, "--steps must be a positive whole number"),
    ({"settings": Settings(lr=-1.0)}, "learning rate must be above 0")])
def test_run_lab_refuses_bad_arguments_in_one_line(kwargs, message, capsys):
    from tutor.ui.host import run_lab

    assert run_lab(**kwargs) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


async def test_a_status_change_alone_repaints_no_chart():
    """The status line changes every update. A repaint of the whole pane for it would send every
    chart under it to the terminal again each time (bench/bytes.py measured 4x the bytes)."""
    app = lab_app(FAST, paused=True)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await pilot.press("s")
        await until(pilot, lambda: main_run(pane).step == 1, what="one step")
        await pilot.pause(0.6)
        whole_pane_repaints = []
        original = pane.refresh

        def refresh(*regions, **kwargs):
            if not regions:
                whole_pane_repaints.append(kwargs)
            return original(*regions, **kwargs)

        pane.refresh = refresh
        from rich.text import Text
        pane.status = pane.status[:-1] + (Text("a changed status line"),)   # same height
        await pilot.pause(0.3)
        assert whole_pane_repaints == []
