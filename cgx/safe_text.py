"""Names from outside, as cgx prints them: ``shown``.

A file, folder or archive member name, a recipe value or an error message quoting one can hold
bytes a terminal obeys: ESC sequences move the cursor, erase lines or set the window title, a
newline forges a line of cgx's own output, a bidi override turns text around. Every message that
prints such a name passes it through ``shown``; the command line's error line and the skip warnings
pass the whole message. Printable text (accents, CJK, emoji) is kept as it is.
"""
from __future__ import annotations

import unicodedata


def _escape(ch: str) -> str:
    n = ord(ch)
    if 0xDC80 <= n <= 0xDCFF:  # a byte that is not UTF-8 in a file name (os.fsdecode's surrogateescape)
        return f"\\x{n - 0xDC00:02x}"
    if n < 0x100:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\x{n:02x}")
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def shown(value: object) -> str:
    """``str(value)`` with every character a terminal could act on written as an escape (``\\x1b``,
    ``\\n``, ``\\u202e``): control and format characters, line and paragraph separators, surrogates,
    unassigned and private-use code points. Other text is unchanged, and ``shown(shown(x)) == shown(x)``."""
    text = str(value)
    if text.isprintable() and text.isascii():
        return text
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


def _unsafe(ch: str) -> bool:
    if ch == " ":
        return False
    category = unicodedata.category(ch)
    return category[0] == "C" or category in ("Zl", "Zp")
