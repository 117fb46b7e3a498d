"""The command line that reproduces a lab run: `rnn-tutor lab` with every setting spelled out.

    command_line(Settings(cell="rnn", task="echo"))
    # 'rnn-tutor lab --cell rnn --task echo --seq-len 50 --hidden 32 ... --seed 0 --dtype float32'

Every field is written, defaults too, so the line means the same run even if a default changes
(`--init` is left out only for "auto", which has no flag: it is what no `--init` means). The same
options work for `rnn-tutor train`, which prints the same losses step by step.
"""
from __future__ import annotations

import shlex

from tutor.engine.settings import Settings

from .session import LabSession

PROGRAM = "rnn-tutor lab"


def command_args(settings: Settings) -> list[str]:
    s = settings
    args = ["--cell", s.cell, "--task", s.task, "--seq-len", str(s.seq_len),
            "--hidden", str(s.hidden), "--batch", str(s.batch), "--lr", repr(float(s.lr)),
            "--optimizer", s.optimizer, "--clip", repr(float(s.clip)),
            "--clip-mode", s.clip_mode]
    if s.init != "auto":
        args += ["--init", s.init]
    if s.radius is not None:
        args += ["--radius", repr(float(s.radius))]
    args += ["--forget-bias", repr(float(s.forget_bias))]
    if s.reverse_input:
        args.append("--reverse-input")
    if s.freeze_head:
        args.append("--freeze-head")
    args += ["--seed", str(s.seed), "--dtype", s.dtype, "--truncate", str(s.truncate or 0)]
    return args


def command_line(settings: Settings) -> str:
    return " ".join([PROGRAM] + [shlex.quote(a) for a in command_args(settings)])


def caveats(session: LabSession) -> list[str]:
    """What the command line does not carry over from this lab, in a sentence each."""
    notes = []
    if session.own is not None:
        notes.append(f"This lab trains your own {session.own.kind} from {session.own.file}: the "
                     "command trains the engine's (the same maths, other rounding); press y in "
                     "the new lab for yours.")
    if session.compare:
        notes.append("This lab compares rnn, lstm and gru: press x in the new lab for the same "
                     "three runs.")
    changed = [(step, label) for run in session.history.runs.values()
               for step, label in run.events]
    if changed:
        step, label = changed[0]
        notes.append(f"This run changed a setting while it trained ({label} after step {step}); "
                     "the command has the settings of now from step 1, so its losses differ.")
    return notes
