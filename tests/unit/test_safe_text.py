"""safe_text: untrusted caller data made safe to store and print, reversibly."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astreinte_ari.adapters.store.safe_text import (
    MIN_LIMIT,
    safe_text,
    unescape,
    unescape_bytes,
)

# Every code point, including lone surrogates and control characters.
ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=400)
LIMITS = st.integers(min_value=MIN_LIMIT, max_value=600)


def _is_dangerous(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs")


@settings(max_examples=400)
@given(value=st.one_of(ANY_TEXT, st.binary(max_size=400), st.none()), limit=LIMITS)
def test_never_raises_and_output_is_safe_and_bounded(value: str | bytes | None, limit: int) -> None:
    out = safe_text(value, limit)
    assert isinstance(out, str)
    assert len(out) <= limit
    assert "\x00" not in out
    assert not any(_is_dangerous(ch) for ch in out)
    out.encode("utf-8")  # storable in PostgreSQL / SQLite text


@settings(max_examples=400)
@given(value=ANY_TEXT, limit=LIMITS)
def test_reversible_for_text_when_not_truncated(value: str, limit: int) -> None:
    out = safe_text(value, limit)
    if "…[+" not in out or not out.endswith("]"):
        assert unescape(out) == value


@settings(max_examples=400)
@given(value=st.binary(max_size=300))
def test_reversible_for_bytes(value: bytes) -> None:
    out = safe_text(value, limit=2000)
    assert unescape_bytes(out) == value


@given(value=ANY_TEXT.filter(lambda s: len(s) > 0), limit=LIMITS)
def test_truncation_is_marked_with_dropped_count(value: str, limit: int) -> None:
    out = safe_text(value * 3, limit)
    if out.endswith("]") and "…[+" in out:
        head, _, count = out.rpartition("…[+")
        dropped = int(count[:-1])
        assert dropped > 0
        # The kept part is exactly the escape of the first characters.
        assert unescape(head) == (value * 3)[: len(value) * 3 - dropped]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice Martin", "Alice Martin"),
        ("Zoé 😀 Ωμέγα 山田", "Zoé 😀 Ωμέγα 山田"),
        ("a\x00b", "a\\x00b"),
        ("back\\slash", "back\\\\slash"),
        ("line\nbreak\ttab\rcr", "line\\nbreak\\ttab\\rcr"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("del\x7f", "del\\x7f"),
        ("c1\x85", "c1\\u0085"),
        (b"ok\xff\xfe", "ok\\xff\\xfe"),
        (b"caf\xc3\xa9", "café"),
        ("'; DROP TABLE calls; --", "'; DROP TABLE calls; --"),
        ("\ud800", "\\ud800"),
        (None, ""),
    ],
)
def test_examples(raw: str | bytes | None, expected: str) -> None:
    assert safe_text(raw) == expected


def test_truncation_example() -> None:
    assert safe_text("x" * 500, limit=20) == "x" * 13 + "…[+487]"
    assert len(safe_text("x" * 500, limit=20)) == 20
    assert safe_text("x" * 20, limit=20) == "x" * 20


def test_truncation_never_splits_an_escape() -> None:
    out = safe_text("\x00" * 100, limit=20)
    assert out.endswith("…[+97]")
    assert out == "\\x00" * 3 + "…[+97]"


def test_limit_too_small_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        safe_text("abc", limit=3)


def test_unescape_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        unescape("bad\\q")
    with pytest.raises(ValueError):
        unescape("trailing\\")
