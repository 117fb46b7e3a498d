"""Make untrusted text (lesson files) safe to put on a terminal.

A terminal acts on control characters: ESC starts sequences that clear the screen, retitle the
window or write the clipboard (OSC 52), and C1 codes such as U+009B do the same on terminals that
honour 8-bit controls. `clean` swaps every such character for visible text, so a sequence shows as
harmless characters ("␛[2J") and can never act. Newline and tab are kept.
"""
from __future__ import annotations

import re

# C0 controls and DEL have Unicode "control pictures" (U+2400 block): ESC -> ␛, BEL -> ␇.
_PICTURES = {chr(c): chr(0x2400 + c) for c in range(0x20) if c not in (0x09, 0x0A)}
_PICTURES["\x7f"] = "\u2421"  # ␡

# C1 controls, bidi embeddings/overrides/isolates (which can reorder what the reader sees) and the
# Unicode line/paragraph separators have no picture: show their code point.
_CODEPOINTS = [*range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]
_REPLACEMENTS = {**_PICTURES, **{chr(c): f"<U+{c:04X}>" for c in _CODEPOINTS}}

_UNSAFE = re.compile("[" + "".join(re.escape(ch) for ch in _REPLACEMENTS) + "]")
_TABLE = str.maketrans(_REPLACEMENTS)


def clean(text: str) -> str:
    """Return `text` with every terminal control character replaced by visible text."""
    if _UNSAFE.search(text) is None:   # the common case: a regex scan is far faster than translate
        return text
    return text.translate(_TABLE)


def is_clean(text: str) -> bool:
    """True when `text` holds nothing that `clean` would change."""
    return _UNSAFE.search(text) is None
