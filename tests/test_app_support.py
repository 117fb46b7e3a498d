"""Shared fixtures for the tutor app tests (no tests here): a small lessons folder with small,
fast presets, a private data folder, and helpers to wait on the lab's worker process."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

FIRST = """\
---
title: First steps
cell: rnn
task: echo
seq_len: 10
hidden: 8
batch: 8
---
# First steps

A feed-forward net takes a **fixed-size** input; a sentence does not have one.

- one-to-many: captioning
- many-to-one: sentiment

| cell | gates |
|------|-------|
| rnn  | none  |
| lstm | forget, input, output |

h_t = tanh(W_xh·x_t + W_hh·h_{t−1} + b)

```checkpoint
id: shapes
ask: Which shape is sentiment analysis?
+ many-to-one
  > Right: a whole sentence in, one label out.
- one-to-many
  > No: one-to-many turns one input into a sequence, like captioning.
- many-to-many
  > Not quite: sentiment gives one label for the whole sequence.
```

Press 3 and watch the chart.

```checkpoint
id: gates
ask: Which cell has a forget gate?
- rnn
  > The plain RNN has no gates at all.
+ lstm
  > Right: the forget gate scales the cell state.
```

The end.
"""

READING = """\
---
title: A long read
cell: lstm
task: adding
seq_len: 12
hidden: 8
batch: 8
clip: 1.0
---
# A long read

""" + "\n\n".join(f"Paragraph {i}: the gradient at step {i} is a product of Jacobians."
                  for i in range(1, 41)) + "\n\nThe last line of the long read.\n"

WORKED = """\
---
title: Worked numbers
mode: worked
worked_cell: gru
---
# Worked numbers

Press the right arrow in the worked example to step.
"""

NONE = """\
---
title: Just reading
mode: none
---
# Just reading

No lab for this one.
"""

MAP = """\
---
title: The iterated map
mode: map
map: tanh
map_w: 2.5
---
# The iterated map

Watch x settle.
"""

BROKEN = """\
---
title: Broken
cell: banana
---
Body.
"""




def write_lessons(folder: Path, broken: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("01-first.md", FIRST), ("02-long-read.md", READING),
                       ("03-worked.md", WORKED), ("04-just-reading.md", NONE),
                       ("05-iterated-map.md", MAP)):
        (folder / name).write_text(text, encoding="utf-8")
    if broken:
        (folder / "06-broken.md").write_text(BROKEN, encoding="utf-8")
    return folder


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("RNN_TUTOR_DATA_DIR", str(path))
    monkeypatch.delenv("NO_COLOR", raising=False)
    return path


@pytest.fixture
def lessons_dir(tmp_path) -> Path:
    return write_lessons(tmp_path / "lessons")


@pytest.fixture
def broken_lessons_dir(tmp_path) -> Path:
    return write_lessons(tmp_path / "lessons-with-broken", broken=True)


def saved_progress(data_dir: Path) -> dict:
    return json.loads((data_dir / "progress.json").read_text(encoding="utf-8"))


async def wait_for(pilot, condition, timeout: float = 15.0, what: str = "condition") -> None:
    """Let the app run until condition() holds (the worker answers asynchronously)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def lab_step(pane) -> int:
    return max((run.step for run in pane.history.runs.values()), default=0)


async def wait_for_worker(pilot, pane, timeout: float = 20.0) -> None:
    """Until the lab's worker process is up."""
    await wait_for(pilot, lambda: pane.session.trainer.alive,
                   timeout, "the lab's worker to start")


async def step_lab_to(pilot, pane, steps: int) -> None:
    """Single-step a paused lab until it reports `steps` steps, then let charts redraw."""
    await wait_for_worker(pilot, pane)
    assert pane.paused
    while lab_step(pane) < steps:
        before = lab_step(pane)
        pane.step_once()
        await wait_for(pilot, lambda: lab_step(pane) > before, what=f"step {before + 1}")
    await pilot.pause(2.5 / pane.fps)


async def started(pilot, timeout: float = 20.0) -> None:
    """Until the current lesson is fully drawn and its lab mounted."""
    await wait_for(pilot, lambda: pilot.app.ready, timeout, "the lesson and its lab")


async def opened(pilot, title: str, timeout: float = 20.0) -> None:
    """Until the lesson titled `title` is fully drawn and its lab mounted."""
    app = pilot.app
    await wait_for(pilot, lambda: app.ready and app.lesson_pane.lesson is not None
                   and app.lesson_pane.lesson.title == title, timeout, f"lesson {title!r}")
