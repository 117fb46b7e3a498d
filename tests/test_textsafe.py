"""textsafe.clean: control characters in lesson text must show as text and never act."""
import time

import pyte
import pytest

from tutor.textsafe import clean, is_clean

OSC52 = "\x1b]52;c;cm0gLXJmIH4=\x07"            # write "rm -rf ~" to the clipboard
CLEAR = "\x1b[2J\x1b[H"                         # clear the screen, cursor home
TITLE = "\x1b]0;pwned\x07"                      # set the window title
C1_CSI = "\x9b2J"                               # 8-bit CSI: clear on terminals honouring C1


def test_plain_text_is_returned_unchanged():
    text = "‖∂L/∂h_t‖ = ∏ f′(x_t)\n\tcafé 日本語 🙂 <b>[bold]</b>"
    assert clean(text) is text
    assert is_clean(text)


@pytest.mark.parametrize("code", [c for c in range(0x20) if c not in (0x09, 0x0A)] + [0x7F])
def test_every_c0_control_and_del_becomes_its_control_picture(code):
    out = clean(f"a{chr(code)}b")
    expected = "\u2421" if code == 0x7F else chr(0x2400 + code)
    assert out == f"a{expected}b"


@pytest.mark.parametrize("code", range(0x80, 0xA0))
def test_every_c1_control_becomes_its_code_point(code):
    out = clean(f"a{chr(code)}b")
    assert out == f"a<U+{code:04X}>b"


@pytest.mark.parametrize("code", [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
def test_bidi_overrides_and_isolates_are_made_visible(code):
    out = clean(f"abc{chr(code)}def")
    assert chr(code) not in out
    assert f"<U+{code:04X}>" in out


def test_newline_and_tab_are_kept():
    assert clean("a\tb\nc") == "a\tb\nc"


@pytest.mark.parametrize("sequence", [OSC52, CLEAR, TITLE, C1_CSI])
def test_escape_sequences_keep_their_text_but_lose_every_control(sequence):
    out = clean(f"before {sequence} after")
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in out)
    assert out.startswith("before ") and out.endswith(" after")
    visible_payload = sequence.lstrip("\x1b\x9b").rstrip("\x07")
    assert visible_payload.split("\x1b")[0] in out


def _screen_after(text: str) -> pyte.Screen:
    screen = pyte.Screen(40, 4)
    stream = pyte.Stream(screen)
    stream.feed("visible line\r\n")
    stream.feed(text)
    return screen


def test_raw_sequences_act_on_a_terminal_and_cleaned_ones_do_not():
    payload = f"x{CLEAR}{TITLE}y"
    raw = _screen_after(payload)
    assert raw.title == "pwned"                              # the raw bytes do act
    assert "visible line" not in "\n".join(raw.display)

    safe = _screen_after(clean(payload))
    assert safe.title == ""
    shown = "\n".join(safe.display)
    assert "visible line" in shown
    assert "␛[2J" in shown and "␛]0;pwned␇" in shown


def test_five_megabytes_is_fast_clean_or_dirty():
    plain = "The gradient vanishes. " * (5 * 1024 * 1024 // 23)
    dirty = ("ab\x1b[2Jcd\n" * (5 * 1024 * 1024 // 9))
    for text in (plain, dirty):
        start = time.perf_counter()
        out = clean(text)
        assert time.perf_counter() - start < 2.0
        assert "\x1b" not in out
    assert len(clean(dirty)) == len(dirty)     # one visible character per control character
