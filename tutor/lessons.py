"""Load and validate lesson files.

A lesson is data: a UTF-8 Markdown file named `NN-slug.md` with flat `key: value` front matter
and ```checkpoint blocks in its body (the format is documented in lessons/README.md). Nothing in a
file is evaluated, no YAML library is used, and every string meant for the screen is passed
through `textsafe.clean`. A file that breaks a rule becomes a `BrokenLesson` with a one-line
reason; the rest of the folder still loads.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from . import textsafe
from .lesson_body import Checkpoint, Invalid, Option, parse_body, quote  # noqa: F401
from .engine.settings import Settings, SettingsError
from .lab.modes import LabMode, MapLab, TrainLab, WorkedLab

MAX_LESSON_BYTES = 256 * 1024
MAX_TITLE_CHARS = 120
MAP_LIMIT = 50.0           # |map_w|, |map_b|, |map_x0| at most this

MODES = ("train", "worked", "map", "none")
WORKED_CELLS = ("rnn", "lstm", "gru")
MAP_KINDS = ("tanh", "sigmoid")

NAME_RULE = "file name must look like NN-slug.md: two digits, a dash, then a-z, 0-9 and '-'"
CONTROL_WARNING = "this lesson contained terminal control characters; they are shown as text"

_NAME_RE = re.compile(r"(\d{2})-([a-z0-9]+(?:-[a-z0-9]+)*)\.md")
_KEY_LINE_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)[ \t]*:(?:[ \t]+(.*)|[ \t]*)")
_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_MAX_DIGITS = 30           # int() refuses very long digit strings; no setting needs this many
_NON_FINITE_RE = re.compile(r"[+-]?\.?(?:nan|inf|infinity)", re.IGNORECASE)
_TRUE, _FALSE = ("true", "yes", "on"), ("false", "no", "off")


class LessonsError(Exception):
    """The lessons folder itself is unusable; the message is one line."""


@dataclass
class Lesson:
    number: int
    slug: str
    title: str
    path: Path
    mode: str                                # "train" | "worked" | "map" | "none"
    settings: Settings                       # the lab preset (engine defaults for missing keys)
    preset_fields: frozenset[str]            # Settings fields the file set explicitly
    parts: list[str | Checkpoint]            # Markdown chunks and checkpoints, in file order
    checkpoints: list[Checkpoint]
    lab: LabMode = None                      # what the lab pane shows, from mode and its keys
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The file stem, e.g. "03-bptt"."""
        return f"{self.number:02d}-{self.slug}"


@dataclass(frozen=True)
class BrokenLesson:
    path: Path
    name: str      # the file name, cleaned for display
    reason: str    # one line


@dataclass
class LessonSet:
    folder: Path
    lessons: list[Lesson]
    broken: list[BrokenLesson]


# ---------------------------------------------------------------------------------------------
# Front matter schema, derived from the engine's Settings so a new field is picked up by itself.

def _settings_kinds() -> dict[str, str]:
    kinds = {}
    for f in dataclasses.fields(Settings):
        if f.name == "clip":
            kinds[f.name] = "clip"                 # a threshold, or off/none
        elif f.name == "truncate":
            kinds[f.name] = "int_or_none"          # steps, or off/none/0 for the full pass
        elif f.default is None:
            kinds[f.name] = "float_or_none"        # radius: none, or a number
        elif isinstance(f.default, bool):
            kinds[f.name] = "bool"
        elif isinstance(f.default, int):
            kinds[f.name] = "int"
        elif isinstance(f.default, float):
            kinds[f.name] = "float"
        else:
            kinds[f.name] = "choice"
    return kinds


SETTINGS_KINDS = _settings_kinds()
MODE_KEYS = {"worked_cell": "worked", "map": "map", "map_w": "map", "map_b": "map", "map_x0": "map",
             "budget": "train"}
MAX_BUDGET = 1_000_000     # steps
KNOWN_KEYS = ("title", "mode", *SETTINGS_KINDS, *MODE_KEYS)
# Names a teacher might reach for that difflib would not connect to the real key.
_HINTS = {"t": "seq_len", "length": "seq_len", "steps": "seq_len", "optimiser": "optimizer",
          "clipping": "clip", "reverse": "reverse_input", "reversal": "reverse_input",
          "learning_rate": "lr", "cell_type": "cell", "hidden_size": "hidden",
          "batch_size": "batch", "spectral_radius": "radius"}


def _suggest(key: str) -> str:
    lowered = key.lower().replace("-", "_")
    if lowered in KNOWN_KEYS:
        return lowered
    if lowered in _HINTS:
        return _HINTS[lowered]
    close = difflib.get_close_matches(lowered, KNOWN_KEYS, n=1, cutoff=0.6)
    return close[0] if close else ""


# ---------------------------------------------------------------------------------------------
# Loading a folder

def default_lessons_dir() -> Path:
    """The shipped lessons: tutor/_lessons in an installed wheel, <repo>/lessons in a checkout."""
    package = Path(__file__).resolve().parent
    installed = package / "_lessons"
    if installed.is_dir():
        return installed
    checkout = package.parent / "lessons"
    return checkout if checkout.is_dir() else installed


def load_lessons(folder: Path | None = None) -> LessonSet:
    folder = Path(folder) if folder is not None else default_lessons_dir()
    shown = textsafe.clean(str(folder))
    try:
        if not folder.exists():
            raise LessonsError(f"lessons folder {shown} does not exist")
        if not folder.is_dir():
            raise LessonsError(f"{shown} is not a folder of lessons")
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise LessonsError(f"cannot read lessons folder {shown}: {e.strerror or e}") from None

    lessons: list[Lesson] = []
    broken: list[BrokenLesson] = []
    numbers: dict[int, str] = {}
    slugs: dict[str, str] = {}
    for path in entries:
        name = path.name
        if name.startswith(".") or name.lower() == "readme.md":
            continue
        match = _NAME_RE.fullmatch(name)
        if not name.endswith(".md") and match is None:
            continue
        display = textsafe.clean(name)
        if match is None:
            broken.append(BrokenLesson(path, display, NAME_RULE))
            continue
        number, slug = int(match.group(1)), match.group(2)
        try:
            lesson = _load_file(path, number, slug)
        except Invalid as e:
            broken.append(BrokenLesson(path, display, textsafe.clean(str(e))))
            continue
        except Exception as e:  # a parser bug must cost one lesson, never the whole app
            broken.append(BrokenLesson(path, display, f"could not be read ({type(e).__name__}: "
                                                      f"{textsafe.clean(str(e))})"))
            continue
        if number in numbers:
            broken.append(BrokenLesson(path, display,
                                       f"lesson number {number:02d} is already used by {numbers[number]}"))
        elif slug in slugs:
            broken.append(BrokenLesson(path, display,
                                       f"slug {slug!r} is already used by {slugs[slug]}"))
        else:
            numbers[number], slugs[slug] = name, name
            lessons.append(lesson)
    lessons.sort(key=lambda lesson: lesson.number)
    return LessonSet(folder, lessons, broken)


def find_lesson(lesson_set: LessonSet, key: str) -> Lesson | None:
    """Look a lesson up by number ("3", "03"), slug ("bptt") or name ("03-bptt", "03-bptt.md")."""
    key = key.strip().removesuffix(".md")
    for lesson in lesson_set.lessons:
        if key.isdigit() and int(key) == lesson.number:
            return lesson
        if key in (lesson.slug, lesson.name):
            return lesson
    return None


def format_listing(lesson_set: LessonSet) -> str:
    """The plain-text table `rnn-tutor lessons` prints."""
    lines = []
    width = max((len(lesson.slug) for lesson in lesson_set.lessons), default=0)
    for lesson in lesson_set.lessons:
        mode = "" if lesson.mode == "train" else f"  [{lesson.mode}]"
        lines.append(f"{lesson.number:02d}  {lesson.slug:<{width}}  {lesson.title}{mode}")
    if not lesson_set.lessons:
        lines.append(f"no lessons in {textsafe.clean(str(lesson_set.folder))}")
    if lesson_set.broken:
        lines.append("")
        lines.append("broken:")
        lines.extend(f"  {b.name}: {b.reason}" for b in lesson_set.broken)
    return textsafe.clean("\n".join(lines)) + "\n"


# ---------------------------------------------------------------------------------------------
# One file

def _load_file(path: Path, number: int, slug: str) -> Lesson:
    try:
        if path.is_dir():
            raise Invalid("is a folder, not a file")
        if not stat.S_ISREG(path.stat().st_mode):   # a FIFO would block open() forever
            raise Invalid("is not a regular file")
        with open(path, "rb") as f:
            data = f.read(MAX_LESSON_BYTES + 1)
            if len(data) > MAX_LESSON_BYTES:
                size = max(path.stat().st_size, len(data))
                raise Invalid(f"lesson is {_size(size)}; the limit is {_size(MAX_LESSON_BYTES)}")
    except OSError as e:
        raise Invalid(f"cannot read the file: {e.strerror or e}") from None
    text = _decode(data)
    return _parse(text, path, number, slug)


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:g} KiB" if n % 1024 == 0 else f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


def _decode(data: bytes) -> str:
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        raise Invalid("empty file")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise Invalid(f"binary file, not text (NUL byte on line {line})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise Invalid(f"not UTF-8 text (byte 0x{data[e.start]:02x} on line {line}); "
                       "save the file as UTF-8") from None
    return text.replace("\r\n", "\n")


def _parse(text: str, path: Path, number: int, slug: str) -> Lesson:
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        raise Invalid("missing front matter: the file must start with a '---' line")
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        raise Invalid("front matter opened on line 1 is never closed with a '---' line")
    raw = _read_front_matter(lines[1:end], first_line=2)
    values = {key: _convert(key, value, line) for key, (value, line) in raw.items()}

    mode = values.get("mode", "train")
    for key in raw:
        if key in MODE_KEYS and MODE_KEYS[key] != mode:
            raise Invalid(f"line {raw[key][1]}: {key!r} applies only with 'mode: {MODE_KEYS[key]}'")
    if "title" not in values:
        raise Invalid("missing title: add a 'title: ...' line to the front matter")
    dirty = False
    title = textsafe.clean(values["title"])
    dirty |= title != values["title"]
    if not title.strip():
        raise Invalid(f"line {raw['title'][1]}: the title is empty")
    if len(title) > MAX_TITLE_CHARS:
        raise Invalid(f"line {raw['title'][1]}: the title is {len(title)} characters; "
                       f"the limit is {MAX_TITLE_CHARS}")

    preset = {k: v for k, v in values.items() if k in SETTINGS_KINDS}
    try:
        settings = Settings(**preset).validated()
    except SettingsError as e:
        raise Invalid(f"{_culprit(preset, raw, str(e))}: {e}") from None

    settings_for = _experiment_settings(settings) if mode == "train" else None
    parts, checkpoints, body_dirty, warnings = parse_body(lines[end + 1:], first_line=end + 2,
                                                          settings_for=settings_for)
    lab = {"train": lambda: TrainLab(settings, values.get("budget")),
           "worked": lambda: WorkedLab(values.get("worked_cell", "rnn")),
           "map": lambda: MapLab(values.get("map"), values.get("map_w"), values.get("map_b"),
                                 values.get("map_x0")),
           "none": lambda: None}[mode]()
    lesson = Lesson(
        number=number, slug=slug, title=title.strip(), path=path, mode=mode, settings=settings,
        preset_fields=frozenset(preset), parts=parts, checkpoints=checkpoints, lab=lab,
        warnings=warnings)
    if dirty or body_dirty:
        lesson.warnings.insert(0, CONTROL_WARNING)
    return lesson


def _experiment_settings(preset: Settings):
    """A ```predict block's `run:` changes, converted like front matter and applied to the
    lesson's preset."""
    def settings_for(raw: dict[str, tuple[str, int]]) -> Settings:
        changes = {}
        for key, (value, lineno) in raw.items():
            if key not in SETTINGS_KINDS:
                hint = _suggest(key)
                hint = f"; did you mean {hint!r}?" if hint in SETTINGS_KINDS else ""
                raise Invalid(f"line {lineno}: run: {quote(key)} is not a lab setting{hint}")
            changes[key] = _convert(key, value, lineno)
        try:
            return preset.replace(**changes).validated()
        except SettingsError as e:
            line = next(iter(raw.values()))[1] if raw else None
            raise Invalid(f"line {line}: run: {e}" if line else f"run: {e}") from None
    return settings_for


def _read_front_matter(lines: list[str], first_line: int) -> dict[str, tuple[str, int]]:
    """Map each key to (raw value, line number); syntax errors raise Invalid."""
    found: dict[str, tuple[str, int]] = {}
    for offset, line in enumerate(lines):
        lineno = first_line + offset
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0] in " \t":
            raise Invalid(f"line {lineno}: indented lines are not allowed; "
                           "the front matter is flat 'key: value' lines")
        if stripped[0] in "!&*":
            raise Invalid(f"line {lineno}: YAML tags, anchors and aliases are not allowed")
        match = _KEY_LINE_RE.fullmatch(stripped)
        if match is None:
            hint = "; put a space after the colon" if re.match(r"\w+:\S", stripped) else ""
            raise Invalid(f"line {lineno} is not 'key: value': {quote(stripped)}{hint}")
        key = match.group(1)
        if key not in KNOWN_KEYS:
            hint = _suggest(key)
            hint = f"; did you mean {hint!r}?" if hint else f"; known keys: {', '.join(KNOWN_KEYS)}"
            raise Invalid(f"line {lineno}: unknown key {quote(key)}{hint}")
        if key in found:
            raise Invalid(f"line {lineno}: duplicate key {key!r} (first set on line {found[key][1]})")
        found[key] = (_scalar(match.group(2) or "", lineno), lineno)
    return found


def _scalar(raw: str, lineno: int) -> str:
    """The text of a value: quotes removed, a trailing ' # comment' dropped, YAML syntax refused."""
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        close = raw.find(raw[0], 1)
        if close < 0:
            raise Invalid(f"line {lineno}: the quote {raw[0]} is never closed")
        rest = raw[close + 1:].strip()
        if rest and not rest.startswith("#"):
            raise Invalid(f"line {lineno}: unexpected text after the closing quote: {quote(rest)}")
        return raw[1:close]
    comment = re.search(r"[ \t]#", raw)
    if comment:
        raw = raw[: comment.start()].rstrip()
    elif raw.startswith("#"):
        raw = ""
    if raw[:1] in ("!", "&", "*"):
        what = {"!": "YAML tags such as '!!python/object'", "&": "YAML anchors",
                "*": "YAML aliases"}[raw[0]]
        raise Invalid(f"line {lineno}: {what} are not allowed; lesson files are plain data "
                       "(quote the value if you mean the text)")
    if raw[:1] in ("[", "{"):
        raise Invalid(f"line {lineno}: lists and mappings are not allowed; give one plain value")
    if raw in ("|", ">", "|-", ">-", "|+", ">+"):
        raise Invalid(f"line {lineno}: multi-line values are not allowed; keep the value on one line")
    return raw


def _convert(key: str, value: str, lineno: int):
    """Turn a raw value into the type its key needs, checking ranges the engine does not own."""
    where = f"line {lineno}: {key}"
    if key == "title":
        return value
    if key == "mode":
        return _choice(where, value, MODES)
    if key == "worked_cell":
        return _choice(where, value, WORKED_CELLS)
    if key == "map":
        return _choice(where, value, MAP_KINDS)
    if key in ("map_w", "map_b", "map_x0"):
        number = _float(where, value)
        if abs(number) > MAP_LIMIT:
            raise Invalid(f"{where} must be between {-MAP_LIMIT:g} and {MAP_LIMIT:g}, not {value}")
        return number
    if key == "budget":
        if not _INT_RE.fullmatch(value) or len(value) > _MAX_DIGITS \
                or not 1 <= int(value) <= MAX_BUDGET:
            raise Invalid(f"{where} must be a whole number of steps from 1 to {MAX_BUDGET}, "
                          f"not {quote(value)}")
        return int(value)

    kind = SETTINGS_KINDS[key]
    if not value:
        raise Invalid(f"{where} has no value")
    if kind == "choice":
        converted = value.lower()
    elif kind == "int_or_none" and value.lower() in ("none", "off", "0"):
        converted = None
    elif kind in ("int", "int_or_none"):
        if not _INT_RE.fullmatch(value):
            raise Invalid(f"{where} must be a whole number, not {quote(value)}")
        if len(value.lstrip("+-")) > _MAX_DIGITS:
            raise Invalid(f"{where} is far too large: {quote(value)}")
        converted = int(value)
    elif kind == "float":
        converted = _float(where, value)
    elif kind == "bool":
        if value.lower() in _TRUE:
            converted = True
        elif value.lower() in _FALSE:
            converted = False
        else:
            raise Invalid(f"{where} must be true or false, not {quote(value)}")
    elif kind == "clip":
        converted = 0.0 if value.lower() in ("off", "none", "false", "no") else _float(where, value)
    else:  # float_or_none
        converted = None if value.lower() in ("none", "off") else _float(where, value)
    return converted


def _culprit(preset: dict, raw: dict[str, tuple[str, int]], message: str) -> str:
    """Where an engine SettingsError comes from: the line of the one key that fails the same way
    on its own, else the front matter as a whole (a clash between keys)."""
    for key, value in preset.items():
        try:
            Settings(**{key: value}).validated()
        except SettingsError as e:
            if str(e) == message:
                return f"line {raw[key][1]}"
    return "front matter"


def _choice(where: str, value: str, choices: tuple[str, ...]) -> str:
    if value.lower() not in choices:
        raise Invalid(f"{where} must be one of {', '.join(choices)}, not {quote(value)}")
    return value.lower()


def _float(where: str, value: str) -> float:
    if _NON_FINITE_RE.fullmatch(value):
        raise Invalid(f"{where} must be a finite number, not {quote(value)}")
    if not _FLOAT_RE.fullmatch(value):
        raise Invalid(f"{where} must be a number, not {quote(value)}")
    if len(value) > 64:
        raise Invalid(f"{where} has far too many digits: {quote(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise Invalid(f"{where} must be a finite number, not {quote(value)}")
    return number
