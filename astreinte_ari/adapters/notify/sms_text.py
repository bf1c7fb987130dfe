"""SMS texts that fit: GSM-7 when it can be, segments counted, links never cut.

One character outside GSM 03.38 (a French "â", "ç", "ô"...) switches the
whole message to UCS-2, where a segment holds 70 characters instead of 160:
a 442-character alert then costs 7 segments. Accents the alphabet lacks are
replaced by their base letter (the alphabet has é è à ù ì ò É Ç Ä Ö Ü Ñ...),
so an alert stays GSM-7, and the text is shortened around the links (never the
links: a cut link is refused by the service) to fit `max_segments`.
"""

from __future__ import annotations

import math
import unicodedata

# GSM 03.38 default alphabet and its extension table (2 septets each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
_REPLACEMENTS = {
    "’": "'",
    "‘": "'",
    "“": '"',
    "”": '"',
    "«": '"',
    "»": '"',
    "…": "...",
    "–": "-",
    "—": "-",
    "œ": "oe",
    "Œ": "OE",
    "\u00a0": " ",
    "\u202f": " ",
}
ELLIPSIS = "..."


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def to_gsm7(text: str) -> str:
    """The closest text in the GSM 7-bit alphabet (accents it lacks dropped)."""
    out: list[str] = []
    for char in text:
        if char in GSM7_BASIC or char in GSM7_EXTENSION:
            out.append(char)
        elif char in _REPLACEMENTS:
            out.append(_REPLACEMENTS[char])
        else:
            base = unicodedata.normalize("NFKD", char)
            base = "".join(c for c in base if not unicodedata.combining(c))
            out.append(base if base and is_gsm7(base) else "?")
    return "".join(out)


def segments(text: str) -> tuple[str, int]:
    """("gsm7" | "ucs2", number of SMS segments) for this text."""
    if is_gsm7(text):
        septets = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        return "gsm7", 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return "ucs2", 1 if units <= 70 else math.ceil(units / 67)


def fit_sms(text: str, links: list[tuple[str, str]], max_segments: int = 2) -> str:
    """`text` then each (label, url) link, in GSM-7, shortened to `max_segments`.

    Only `text` is shortened (at a word boundary, with "..."); the links are kept
    whole even if that costs a segment more.
    """
    tail = "".join(f" {label} {url}" for label, url in links)
    body = to_gsm7(text)
    if segments(body + tail)[1] <= max_segments:
        return body + tail
    words = body.split(" ")
    while len(words) > 1:
        words.pop()
        candidate = " ".join(words).rstrip(" ,;:.") + ELLIPSIS
        if segments(candidate + tail)[1] <= max_segments:
            return candidate + tail
    return (words[0][:40] + ELLIPSIS + tail).strip()
