"""Make untrusted text (caller IDs, DTMF, causes) safe to store and to print.

Caller data arrives verbatim from the network: it may hold NUL (which a
PostgreSQL text column cannot hold), terminal control sequences, lone
surrogates or invalid UTF-8, and be arbitrarily long. `safe_text` escapes what
is dangerous with backslash sequences that `unescape` reverses exactly, keeps
every other character as is (accents, emoji, any script), and bounds the length.

Escapes (nothing else ever follows a backslash in the output):

    \\\\        a backslash
    \\n \\r \\t  newline, carriage return, tab
    \\xNN       NN < 80: a C0 control character or DEL (U+0000..U+001F, U+007F)
    \\xNN       NN >= 80: the raw byte NN of invalid UTF-8 (surrogateescape form)
    \\uNNNN     a C1 control character (U+0080..U+009F) or any other lone surrogate
"""

from __future__ import annotations

import re

TRUNCATION_MARK = "…"  # followed by "[+N]": N input characters were dropped
MIN_LIMIT = 12  # room for the truncation marker with a large N

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNNAMED = {v[1]: k for k, v in _NAMED.items()}
_ESCAPE_RE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|(.)|\Z)", re.DOTALL)


def _escape_char(ch: str) -> str:
    """The output form of one input character (usually the character itself)."""
    named = _NAMED.get(ch)
    if named is not None:
        return named
    cp = ord(ch)
    if cp < 0x20 or cp == 0x7F:
        return f"\\x{cp:02x}"
    if 0x80 <= cp <= 0x9F:
        return f"\\u{cp:04x}"
    if 0xDC80 <= cp <= 0xDCFF:  # an undecodable byte, as surrogateescape left it
        return f"\\x{cp - 0xDC00:02x}"
    if 0xD800 <= cp <= 0xDFFF:  # other lone surrogate: not encodable in UTF-8
        return f"\\u{cp:04x}"
    return ch


def safe_text(value: str | bytes | None, limit: int = 256) -> str:
    """Escape control characters, NUL and invalid bytes; cut to `limit` characters.

    The result never holds a control character and is at most `limit` long.
    When cut, it ends with "…[+N]" where N counts the dropped input characters
    (an escape sequence is never split). Never raises for any str/bytes/None.
    """
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT}, got {limit}")
    if value is None:
        return ""
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
    # Each input character yields at least one output character, so only the
    # first `limit` characters can appear in the result: never escape more.
    pieces = [_escape_char(ch) for ch in text[:limit]]
    total = sum(len(p) for p in pieces)
    if total <= limit and len(text) <= limit:
        return "".join(pieces)
    # Keep the longest prefix of whole pieces that leaves room for the marker.
    kept = 0
    used = 0
    while kept < len(pieces):
        size = len(pieces[kept])
        marker_len = len(f"{TRUNCATION_MARK}[+{len(text) - kept - 1}]")
        if used + size + marker_len > limit:
            break
        used += size
        kept += 1
    return "".join(pieces[:kept]) + f"{TRUNCATION_MARK}[+{len(text) - kept}]"


def _unescape_match(match: re.Match[str]) -> str:
    hex2, hex4, other = match.groups()
    if hex2 is not None:
        byte = int(hex2, 16)
        return chr(byte) if byte < 0x80 else chr(0xDC00 + byte)
    if hex4 is not None:
        return chr(int(hex4, 16))
    if other is None:
        raise ValueError("stored text ends with a lone backslash")
    if other in _UNNAMED:
        return _UNNAMED[other]
    raise ValueError(f"unknown escape sequence \\{other!r} in stored text")


def unescape(text: str) -> str:
    """Invert `safe_text` (for a result that was not truncated).

    Undecodable bytes come back as surrogateescape characters:
    `unescape(safe_text(raw)).encode("utf-8", "surrogateescape") == raw`.
    """
    return _ESCAPE_RE.sub(_unescape_match, text)


def unescape_bytes(text: str) -> bytes:
    """Invert `safe_text` applied to bytes: the exact original bytes."""
    return unescape(text).encode("utf-8", "surrogateescape")
