"""The `rnn-tutor` command line: the tutor app by default, plus `train`, `predict`, `lab`,
`lessons`, `worked`, `map`, `exercises` and `serve`.

Errors are one line: bad arguments exit 2, runtime problems (weight files, save paths, an unknown
lesson) exit 1. No traceback ever reaches the terminal.
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import sys

from tutor.blas import prefer_one_thread

prefer_one_thread()    # before NumPy is imported

from tutor import __version__  # noqa: E402
from tutor.engine import settings as S  # noqa: E402

PROG = "rnn-tutor"
PREDICT_TASKS = ("language", "agreement")     # the tasks whose inputs are words
MAX_STEPS = 10_000_000
MAX_FPS = 60.0            # as tutor.ui.terminal.MAX_FPS (not imported: it loads Textual)


class UsageError(Exception):
    """A bad argument found after parsing (exit 2)."""


class RuntimeProblem(Exception):
    """A problem met while running (exit 1)."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise UsageError(message)


# --- argument types: each rejects NaN, inf and out-of-range values with one line -------------

def _number(text: str, kind=float):
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def int_in(low: int, high: int):
    def parse(text: str) -> int:
        value = _number(text, int)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value
    return parse


def float_in(low: float, high: float, low_open: bool = False):
    def parse(text: str) -> float:
        value = _number(text)
        if (value <= low if low_open else value < low) or value > high:
            side = "above" if low_open else "at least"
            raise argparse.ArgumentTypeError(
                f"must be {side} {low:g} and at most {high:g}, got {value:g}")
        return value
    return parse


# --- the parser ------------------------------------------------------------------------------

def add_training_options(p: argparse.ArgumentParser, required: bool) -> None:
    d = S.Settings()
    g = p.add_argument_group("training")
    g.add_argument("--cell", choices=S.CELLS, required=required,
                   **({} if required else {"default": d.cell}),
                   help="rnn (tanh), irnn (ReLU, identity init), lstm or gru"
                        + ("" if required else " (default: %(default)s)"))
    g.add_argument("--task", choices=S.TASKS, required=required,
                   **({} if required else {"default": d.task}),
                   help="echo (short-range), adding, remember, agreement, language (next word; "
                        "scored on the language word)"
                        + ("" if required else " (default: %(default)s)"))
    g.add_argument("--seq-len", "-T", dest="seq_len", type=int_in(1, S.MAX_SEQ_LEN),
                   required=required, **({} if required else {"default": d.seq_len}),
                   metavar="T", help="sequence length; for language, the gap in words from the country "
                   "to the language word" + ("" if required else " (default: %(default)s)"))
    g.add_argument("--hidden", type=int_in(1, S.MAX_HIDDEN), default=None, metavar="H",
                   help=f"hidden units (default: {_defaults('hidden')}; or the weight file's "
                        "size)")
    g.add_argument("--batch", type=int_in(1, S.MAX_BATCH), default=None, metavar="B",
                   help=f"sequences per step (default: {_defaults('batch')})")
    g.add_argument("--lr", type=float_in(0, S.MAX_LR, low_open=True), default=None,
                   help=f"learning rate (default: {_defaults('lr')})")
    g.add_argument("--optimizer", choices=S.OPTIMIZERS, default=None,
                   help=f"default: {_defaults('optimizer')}")
    g.add_argument("--clip", type=float_in(0, S.MAX_CLIP), default=None, metavar="NORM",
                   help=f"clipping threshold; 0 turns clipping off (default: {_defaults('clip')})")
    g.add_argument("--truncate", type=int_in(0, S.MAX_SEQ_LEN), default=0, metavar="K",
                   help="truncated backpropagation through time: carry each loss's gradient "
                        "back at most K steps; 0 is the full backward pass (default: 0)")
    g.add_argument("--clip-mode", choices=S.CLIP_MODES, default=d.clip_mode,
                   help="clip the global norm or each value (default: %(default)s)")
    g.add_argument("--init", choices=[i for i in S.INITS if i != "auto"], default=None,
                   help="recurrent initialisation (default: identity for irnn, PyTorch's "
                        "default otherwise)")
    g.add_argument("--radius", type=float_in(0, S.MAX_RADIUS, low_open=True), default=None,
                   metavar="R", help="rescale the recurrent matrix to spectral radius R")
    g.add_argument("--forget-bias", type=float_in(-S.MAX_FORGET_BIAS, S.MAX_FORGET_BIAS),
                   default=None, metavar="F",
                   help=f"LSTM forget-gate bias (default: {_defaults('forget_bias')})")
    g.add_argument("--reverse-input", action="store_true", help="feed each sequence backwards")
    g.add_argument("--freeze-head", action="store_true",
                   help="train the recurrent weights only, not the linear read-out")
    g.add_argument("--seed", type=int_in(0, S.MAX_SEED), default=d.seed,
                   help="default: %(default)s")
    g.add_argument("--dtype", choices=S.DTYPES, default=d.dtype, help="default: %(default)s")
    g.add_argument("--steps", type=int_in(1, MAX_STEPS), required=required,
                   default=None, metavar="N",
                   help="training steps" + ("" if required else
                                            " (default: the run ends by itself at 3000 steps or once its loss "
                                            "levels off, and space trains on; with N it trains exactly N)"))


# Options whose default depends on the task (settings.TASK_DEFAULTS); the others are fixed.
TASK_DEPENDENT = ("hidden", "batch", "lr", "optimizer", "clip", "forget_bias")


def _defaults(name: str) -> str:
    """'32', or '32; language: 64' when a task has its own default."""
    text = f"{getattr(S.Settings, name):g}" if isinstance(getattr(S.Settings, name), float) \
        else str(getattr(S.Settings, name))
    own = [f"{task}: {S.task_default(task, name):g}" if isinstance(S.task_default(task, name),
           float) else f"{task}: {S.task_default(task, name)}"
           for task in S.TASKS if name in S.TASK_DEFAULTS.get(task, {})]
    return "; ".join([text] + own)


def add_fps(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fps", type=float_in(0, MAX_FPS, low_open=True), default=4.0,
                   help="chart redraws per second at most (default: %(default)s)")


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Watch recurrent networks forget, and watch the "
                    "fixes work. With no command, opens the tutor at your last lesson.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--lesson", metavar="N|SLUG", help="open this lesson")
    parser.add_argument("--lessons", metavar="DIR", help="use another folder of lessons")
    parser.add_argument("--reset-progress", action="store_true",
                        help="clear saved progress before starting")
    add_fps(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    train = sub.add_parser("train", help="train headless, printing JSON Lines",
                           description="Train a cell with no UI. Prints one JSON object per "
                           "logged step, then a final summary object.")
    add_training_options(train, required=True)
    train.add_argument("--log-every", type=int_in(1, MAX_STEPS), default=1, metavar="K",
                       help="log step 1, every K-th step and the last (default: %(default)s)")
    train.add_argument("--save-weights", metavar="FILE.npz",
                       help="save the trained weights with PyTorch's names")
    train.add_argument("--load-weights", metavar="FILE.npz",
                       help="start from these weights instead of a fresh initialisation")

    predict = sub.add_parser(
        "predict", help="the next word after a sentence, from saved weights, as JSON",
        description="Feed a sentence to a trained model and print one JSON object: `next`, the "
        "three most likely next words with their probabilities, and `sensitivity`, for each "
        "input word the norm of the gradient of the top word's log-probability with respect "
        "to that word's input.")
    predict.add_argument("--cell", choices=S.CELLS, required=True, help="the weights' cell")
    predict.add_argument("--task", choices=PREDICT_TASKS, required=True,
                         help="a task whose inputs are words: " + ", ".join(PREDICT_TASKS))
    predict.add_argument("--load-weights", required=True, metavar="FILE.npz",
                         help="weights saved by `train --save-weights`")
    predict.add_argument("--text", required=True, metavar="TEXT",
                         help='the words so far, e.g. "i grew up in brazil . i speak fluent"')

    lab = sub.add_parser("lab", help="open the lab alone, for free experiments",
                         description="The lab with no lesson. Trains until paused or quit.")
    add_training_options(lab, required=False)
    add_fps(lab)

    lessons = sub.add_parser("lessons", help="list the lessons and any broken lesson files")
    lessons.add_argument("--lessons", dest="lessons_dir", metavar="DIR",
                         help="list this folder instead of the shipped lessons")

    worked = sub.add_parser("worked", help="step through a worked numeric example",
                            description="A tiny cell computed one operation at a time, forward "
                            "and backward. Prints plain text when output is not a terminal.")
    worked.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="rnn")
    worked.add_argument("--plain", action="store_true", help="print the walk-through as text")
    add_fps(worked)

    itermap = sub.add_parser("map", help="explore the iterated map behind exploding gradients",
                             description="Cobweb plot, fixed points and the running product "
                             "of derivatives for x ← w·tanh(x) + b or x ← w·σ(x) + b.")
    itermap.add_argument("--map", dest="kind", choices=("tanh", "sigmoid"), default="tanh")
    itermap.add_argument("--w", type=float_in(-100, 100), default=None, help="slope w")
    itermap.add_argument("--b", type=float_in(-100, 100), default=None, help="offset b")
    itermap.add_argument("--x0", type=float_in(-100, 100), default=None, help="start x_0")
    add_fps(itermap)
    add_exercises(sub)
    add_serve(sub)
    return parser


def add_exercises(sub) -> None:
    from tutor.exercises.command import COUNT, DEFAULT_MEMORY_MIB, DEFAULT_TIME_S

    folder_help = "the exercise folder (default: exercises/ in the tutor's data folder)"
    ex = sub.add_parser("exercises", help="write the forward and backward steps yourself; the "
                        "tutor checks them", description="Create (or reopen) your folder of "
                        "exercise files and print where it is. Your files are never "
                        "overwritten.")
    ex.add_argument("--dir", metavar="DIR", help=folder_help)
    actions = ex.add_subparsers(dest="exercises_action", metavar="ACTION", parser_class=Parser)
    check = actions.add_parser("check", help="check your code against the engine",
                               description="Run your exercise code in a separate, limited "
                               "process and compare every output and gradient with the "
                               "engine's. Exit 0 when every checked exercise passes, else 1.")
    check.add_argument("number", nargs="?", type=int_in(1, COUNT), metavar="N",
                       help=f"the exercise to check, 1 to {COUNT} (default: all)")
    check.add_argument("--dir", metavar="DIR", default=argparse.SUPPRESS, help=folder_help)
    check.add_argument("--time-limit", type=float_in(0.5, 600), default=DEFAULT_TIME_S,
                       metavar="S", help="seconds your code may run (default: %(default)s)")
    check.add_argument("--memory-limit", type=int_in(256, 1 << 20), default=DEFAULT_MEMORY_MIB,
                       metavar="MIB", help="memory it may use, in MiB (default: %(default)s)")
    watch = actions.add_parser("watch", help="the exercise screen: checks on every save",
                               description="A screen listing the exercises that checks a file "
                               "each time you save it, with hints and, after a failed check, "
                               "the reference solution.")
    watch.add_argument("--dir", metavar="DIR", default=argparse.SUPPRESS, help=folder_help)


def add_serve(sub) -> None:
    serve = sub.add_parser("serve", help="serve the tutor to web browsers, one tutor per tab",
                           description="Serve the tutor with textual-serve: every browser tab "
                           "gets its own tutor and training worker. ctrl+c ends them all.")
    serve.add_argument("--host", type=host_name, default="127.0.0.1",
                       help="address to listen on (default: %(default)s, this machine only)")
    serve.add_argument("--port", type=int_in(0, 65535), default=8000,
                       help="port to listen on; 0 picks a free one (default: %(default)s)")
    serve.add_argument("--max-sessions", type=int_in(1, 64), default=None, metavar="N",
                       help="tutors running at once; more tabs are told the server is full "
                            "(default: one per two CPU cores, at least 1)")
    serve.add_argument("--lesson", metavar="N|SLUG", help="open every session at this lesson")
    serve.add_argument("--lessons", metavar="DIR", help="use another folder of lessons")
    serve.add_argument("--shared-progress", action="store_true",
                       help="all sessions use this user's saved progress (one learner); by "
                            "default each tab has its own, dropped when the tab closes")
    add_fps(serve)


_HOST_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")


def host_name(text: str) -> str:
    """An IP address or a host name; never a URL or anything with spaces."""
    import ipaddress

    bare = text.strip("[]")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    labels = text.split(".")
    if (not text or len(text) > 253 or not set(text) <= _HOST_CHARS or ":" in text
            or "[" in text or "]" in text
            or any(not label or label[0] == "-" or label[-1] == "-" for label in labels)):
        raise argparse.ArgumentTypeError(f"expected an IP address or a host name, got {text!r}")
    return text


def settings_from(args) -> S.Settings:
    given = {name: getattr(args, name) for name in TASK_DEPENDENT}
    chosen = {name: S.task_default(args.task, name) if value is None else value
              for name, value in given.items()}
    try:
        return S.Settings(
            cell=args.cell, task=args.task, seq_len=args.seq_len,
            clip_mode=args.clip_mode, init=args.init or "auto", radius=args.radius,
            reverse_input=args.reverse_input, seed=args.seed, dtype=args.dtype,
            freeze_head=args.freeze_head, truncate=args.truncate or None, **chosen).validated()
    except S.SettingsError as exc:
        raise UsageError(str(exc)) from None


# --- commands --------------------------------------------------------------------------------

def cmd_train(args) -> int:
    from tutor.engine import Model, Run, WeightsError

    settings = settings_from(args)
    weights = None
    if args.load_weights:
        try:
            weights = Model.load_arrays(args.load_weights)
        except WeightsError as exc:
            raise RuntimeProblem(str(exc)) from None
        settings = _fit_settings_to_weights(settings, weights, args)
    if args.save_weights:
        _check_writable(args.save_weights)
    try:
        run = Run(settings, weights)
    except WeightsError as exc:
        raise RuntimeProblem(f"{args.load_weights}: {exc}") from None

    out = sys.stdout
    last = None
    for i in range(1, args.steps + 1):
        rec = run.step()
        last = rec
        if i == 1 or i % args.log_every == 0 or i == args.steps or run.diverged:
            out.write(json.dumps(run.attach_mechanism(rec).to_json()) + "\n")
        if run.diverged:
            break
    final = {
        "final": True,
        "status": run.status,
        "diverged_at": run.diverged_at,
        "steps": run.steps,
        "loss": rec_field(last, "loss"),
        "accuracy": rec_field(last, "accuracy"),
        "long_range_loss": rec_field(last, "long_range_loss"),
        "baseline": run.baseline.loss,
        "baseline_accuracy": run.baseline.accuracy,
        "steps_per_s": round(run.steps_per_s, 2),
        "settings": {k: v for k, v in vars(settings).items()},
        "sample": _sample_json(run.sample()),
    }
    out.write(json.dumps(final) + "\n")
    out.flush()
    if args.save_weights:
        if run.diverged:
            raise RuntimeProblem(f"not saved to {args.save_weights}: the run diverged at step "
                                 f"{run.diverged_at}")
        try:
            run.model.save(args.save_weights)
        except WeightsError as exc:
            raise RuntimeProblem(str(exc)) from None
    return 0


def cmd_predict(args) -> int:
    from tutor.engine import Model, WeightsError, get_task
    from tutor.engine.predict import UnknownWord, predict_next, split_words

    words = split_words(args.text)
    if not words:
        raise UsageError("--text has no words")
    if len(words) > S.MAX_SEQ_LEN:
        raise UsageError(f"--text has {len(words)} words; at most {S.MAX_SEQ_LEN}")
    task = get_task(args.task)
    try:
        arrays = Model.load_arrays(args.load_weights)
    except WeightsError as exc:
        raise RuntimeProblem(str(exc)) from None
    stored_cell = str(arrays.get("cell", args.cell))
    if stored_cell != args.cell:
        raise RuntimeProblem(f"{args.load_weights} holds a {stored_cell} cell, not {args.cell}")
    try:
        model = Model.from_arrays(args.cell, arrays, task.head, dtype="float64")
        model.check_shapes(task.input_size, task.output_size)
    except WeightsError as exc:
        raise RuntimeProblem(f"{args.load_weights} does not fit a {args.cell} on the "
                             f"{args.task} task: {exc}") from None
    try:
        answer = predict_next(model, task, words)
    except UnknownWord as exc:
        raise RuntimeProblem(str(exc)) from None
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


def _sample_json(sample) -> dict | None:
    """The last batch's first sequence as the lab shows it."""
    if sample is None:
        return None
    return {"inputs": sample.inputs, "target": sample.target, "prediction": sample.prediction}


def rec_field(rec, name):
    return None if rec is None else rec.to_json()[name]


def _fit_settings_to_weights(settings, weights, args):
    """Take the hidden size from the file when not given; refuse a file for another cell."""
    stored_cell = str(weights.get("cell", settings.cell))
    if stored_cell != settings.cell:
        raise RuntimeProblem(f"{args.load_weights} holds a {stored_cell} cell, not a "
                             f"{settings.cell}")
    hh = weights.get("weight_hh_l0")
    if hh is None or getattr(hh, "ndim", 0) != 2:
        raise RuntimeProblem(f"{args.load_weights}: missing or mis-shaped weight_hh_l0")
    hidden = int(hh.shape[1])
    if args.hidden is not None and args.hidden != hidden:
        raise RuntimeProblem(f"{args.load_weights} has hidden size {hidden}, not {args.hidden}")
    if not 1 <= hidden <= S.MAX_HIDDEN:
        raise RuntimeProblem(f"{args.load_weights}: hidden size {hidden} is out of range")
    return settings.replace(hidden=hidden)


def _check_writable(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise RuntimeProblem(f"cannot write {path}: it is a folder")
    if not os.path.isdir(directory):
        raise RuntimeProblem(f"cannot write {path}: no folder {directory}")
    probe = os.path.join(directory, f".rnn-tutor-write-test-{os.getpid()}")
    try:
        with open(probe, "wb"):
            pass
        os.unlink(probe)
    except OSError as exc:
        raise RuntimeProblem(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_lessons(args) -> int:
    from pathlib import Path

    from tutor.lessons import LessonsError, format_listing, load_lessons

    try:
        lesson_set = load_lessons(Path(args.lessons_dir) if args.lessons_dir else None)
    except LessonsError as exc:
        raise RuntimeProblem(str(exc)) from None
    sys.stdout.write(format_listing(lesson_set).rstrip("\n") + "\n")
    return 0


def cmd_lab(args) -> int:
    from tutor.ui.host import run_lab

    return call(run_lab, settings=settings_from(args), fps=args.fps, max_steps=args.steps)


def cmd_worked(args) -> int:
    from tutor.ui.worked_view import run_worked

    return call(run_worked, cell=args.cell, plain=args.plain, fps=args.fps)


def cmd_map(args) -> int:
    from tutor.ui.map_view import run_map

    return call(run_map, kind=args.kind, w=args.w, b=args.b, x0=args.x0, fps=args.fps)


def cmd_tutor(args) -> int:
    from tutor.ui.app import run_tutor

    return call(run_tutor, lessons_dir=args.lessons, lesson=args.lesson, fps=args.fps,
                reset_progress=args.reset_progress)


def cmd_exercises(args) -> int:
    from tutor.exercises import command

    try:
        if args.exercises_action == "check":
            return command.cmd_check(args.dir, args.number, args.time_limit, args.memory_limit)
        if args.exercises_action == "watch":
            from tutor.ui.exercises_screen import run_exercises
            return run_exercises(command.open_folder(args.dir).path)
        return command.cmd_open(args.dir)
    except command.ExercisesProblem as exc:
        raise RuntimeProblem(str(exc)) from None


def call(fn, **kwargs) -> int:
    """Call an entry point with the options it accepts (None means: its own default)."""
    accepted = inspect.signature(fn).parameters
    return fn(**{k: v for k, v in kwargs.items() if k in accepted and v is not None})


def cmd_serve(args) -> int:
    from tutor.serve import DEFAULT_MAX_SESSIONS, ServeError, ServeOptions, check_tutor_options
    from tutor.serve import serve

    lessons = os.path.abspath(args.lessons) if args.lessons else None
    try:
        check_tutor_options(lessons, args.lesson)
    except ServeError as exc:
        raise RuntimeProblem(str(exc)) from None
    tutor_args = ["--fps", repr(args.fps)]
    if lessons:
        tutor_args += ["--lessons", lessons]
    if args.lesson:
        tutor_args += ["--lesson", args.lesson]
    return serve(ServeOptions(host=args.host, port=args.port,
                              max_sessions=args.max_sessions or DEFAULT_MAX_SESSIONS,
                              tutor_args=tutor_args, shared_progress=args.shared_progress))


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "lab": cmd_lab, "lessons": cmd_lessons, "worked": cmd_worked,
            "map": cmd_map, "exercises": cmd_exercises, "serve": cmd_serve, None: cmd_tutor}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args) or 0
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeProblem as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except Exception as exc:  # a bug of ours: still one line, never a traceback on screen
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _quiet_broken_pipe() -> int:
    # Output piped into something that stopped reading (e.g. `| head`): not an error.
    try:
        sys.stdout = open(os.devnull, "w")
    except OSError:
        pass
    return 0
