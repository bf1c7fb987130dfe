"""YAML syntax errors in plain words, at the line to fix, with a hint.

The YAML parser says where it gave up, in its own terms ("did not find expected
key"), and that is often not the line with the mistake: an unclosed quote
swallows the lines after it, a key indented too little makes the next line look
indented too much. These heuristics read the text around that point the way a
person would; what they cannot explain keeps the parser's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

Path = tuple[str | int, ...]

TAB_HINT = (
    "this line is indented with a tab: YAML only accepts spaces for indentation "
    "(use spaces, not tabs; most editors can show tabs or convert them)"
)
# A key before ': ' (or ':' at the end), after any '- ' list markers.
_KEY_RE = re.compile(r"""^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#"'{\[\]}][^#]*?)\s*:(?:\s|$)""")


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    line: int | None  # 1-based
    path: Path  # where in the document, as far as the indentation tells
    message: str


def _glued_key(text: str) -> str | None:
    """'team:demo' (no space after the colon): the key the author meant."""
    m = re.match(r"^([A-Za-z_][\w-]*):\S", text)
    return m.group(1) if m else None


def _scan(line: str) -> tuple[str, int | None]:
    """(the line without its comment, column of a quote still open at its end)."""
    quote: str | None = None
    start = 0
    i = 0
    while i < len(line):
        c = line[i]
        if quote is None:
            if c == "#" and (i == 0 or line[i - 1] in " \t"):
                return line[:i].rstrip(), None
            before = line[:i].rstrip()
            # A quote opens a value only where a value starts ("l'équipe" is plain text).
            if c in "\"'" and (not before or before[-1] in ":-[{,?"):
                quote, start = c, i
        elif quote == '"' and c == "\\":
            i += 1
        elif c == quote:
            if quote == "'" and line[i + 1 : i + 2] == "'":
                i += 1  # '' is a quote inside single quotes
            else:
                quote = None
        i += 1
    return line.rstrip(), (start if quote else None)


class _Text:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def content(self, i: int) -> str:
        return _scan(self.lines[i])[0] if 0 <= i < len(self.lines) else ""

    def significant(self, i: int) -> bool:
        return bool(self.content(i).strip())

    def indent(self, i: int) -> int:
        line = self.lines[i]
        return len(line) - len(line.lstrip(" "))

    def previous(self, i: int) -> int | None:
        j = i - 1
        while j >= 0 and not self.significant(j):
            j -= 1
        return j if j >= 0 else None

    def body(self, i: int) -> str:
        """The line's content after its indentation and any '- ' list markers."""
        return re.sub(r"^(?:-\s+)+", "", self.content(i).strip())

    def key(self, i: int) -> str | None:
        m = _KEY_RE.match(self.body(i))
        return m.group(1).strip("\"'") if m else None

    def is_item(self, i: int) -> bool:
        return self.content(i).strip() == "-" or self.content(i).lstrip().startswith("- ")

    def opens_block(self, i: int) -> bool:
        """Ends with ':' (or is a bare '-'): the lines after it may be indented more."""
        text = self.content(i).strip()
        return text.endswith(":") or text == "-" or text.endswith(("|", ">", "|-", ">-"))

    def item_index(self, i: int) -> int:
        ind, count = self.indent(i), 0
        for j in range(i - 1, -1, -1):
            if not self.significant(j):
                continue
            if self.indent(j) < ind:
                break
            if self.indent(j) == ind and self.is_item(j):
                count += 1
        return count

    def path_at(self, i: int, indent: int) -> Path:
        """Where line i belongs if it were indented by `indent` spaces."""
        own: list[str | int] = []
        if self.is_item(i):
            own.append(self.item_index(i))
        elif (key := self.key(i) or _glued_key(self.body(i))) is not None:
            own.append(key)
        segs: list[str | int] = []
        threshold = indent
        for j in range(i - 1, -1, -1):
            if threshold <= 0:
                break
            if not self.significant(j) or self.indent(j) >= threshold:
                continue
            ind = self.indent(j)
            if self.is_item(j):
                key = self.key(j)
                if key is not None and self.opens_block(j) and threshold > ind + 2:
                    segs.append(key)
                segs.append(self.item_index(j))
            elif (key := self.key(j)) is not None:
                segs.append(key)
            threshold = ind
        return (*reversed(segs), *own)

    def levels(self, i: int) -> list[int]:
        """Indentations of line i and of the blocks it sits in."""
        found = [self.indent(i)]
        for j in range(i - 1, -1, -1):
            if self.significant(j) and self.indent(j) < found[-1]:
                found.append(self.indent(j))
                if self.is_item(j):
                    found.append(self.indent(j) + 2)  # the keys of a '- key: x' item
        return found


def _spaces(n: int) -> str:
    return f"{n} space{'s' * (n != 1)}"


def _at(t: _Text, i: int, message: str, indent: int | None = None) -> SyntaxProblem:
    return SyntaxProblem(i + 1, t.path_at(i, t.indent(i) if indent is None else indent), message)


def _tabs(t: _Text) -> list[SyntaxProblem]:
    found = []
    for i, line in enumerate(t.lines):
        lead = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in lead and line.strip():
            found.append(SyntaxProblem(i + 1, (), TAB_HINT))
    return found


def _open_quote(t: _Text, exc: yaml.MarkedYAMLError, p: int) -> SyntaxProblem | None:
    if exc.context == "while scanning a quoted scalar" and exc.context_mark is not None:
        i, col = exc.context_mark.line, exc.context_mark.column
        q = t.lines[i][col] if col < len(t.lines[i]) else '"'
        shown = t.lines[i][col : col + 20].rstrip()
        return _at(
            t,
            i,
            f"the text in quotes that starts here ({shown}) is never closed: "
            f"add the closing {q} at the end of the value",
        )
    for i in range(min(p, len(t.lines) - 1), -1, -1):
        col = _scan(t.lines[i])[1]
        if col is not None:
            q = t.lines[i][col]
            shown = t.lines[i][col : col + 20].rstrip()
            return _at(
                t,
                i,
                f"the text in quotes that starts here ({shown}) is not closed on "
                f"this line: add the closing {q} (YAML read on to line {p + 1} "
                f"looking for it)",
            )
    return None


def _flow(t: _Text, exc: yaml.MarkedYAMLError, p: int) -> SyntaxProblem | None:
    context, mark = exc.context or "", exc.context_mark
    if not context.startswith("while parsing a flow") or mark is None:
        return None
    i, col = mark.line, mark.column
    opener = t.lines[i][col] if col < len(t.lines[i]) else "{"
    closer = "}" if opener == "{" else "]"
    depth = 0
    for c in t.content(i)[col:]:
        depth += (c in "{[") - (c in "}]")
    if depth > 0:
        return _at(
            t,
            i,
            f"the {opener} opened on this line is not closed: add {closer} at the "
            "end of the line (a {...} or [...] must end on the line it starts)",
        )
    return _at(
        t,
        p,
        f"a ',' is missing between two entries of the {opener}...{closer} on this "
        "line (entries are separated by commas; a value containing ': ' needs "
        "quotes)",
    )


def _no_colon(t: _Text, i: int) -> SyntaxProblem:
    text = t.body(i)
    key = _glued_key(text)
    if key is not None:
        return _at(
            t,
            i,
            f"put a space after ':' ({key}: {text[len(key) + 1 :]}): "
            "without it YAML reads the whole line as one word",
        )
    return _at(t, i, "this line has no ':' after its key: write `key: value`")


def _missing_dash(t: _Text, p: int) -> SyntaxProblem:
    return _at(
        t,
        p,
        "this line is indented like the list items above it ('- ...') but "
        "does not start with '- ': add '- ', or indent it under its item",
    )


def _indentation(t: _Text, p: int, problem: str) -> SyntaxProblem | None:
    q = t.previous(p)
    if q is None:
        return None
    ip, iq = t.indent(p), t.indent(q)
    if ip > iq and not t.opens_block(q):
        r = t.previous(q)
        if r is not None and t.indent(r) == ip and ip > iq:
            # The line above is the odd one: its neighbours agree with each other.
            return _at(
                t,
                q,
                f"this line is indented less than the lines around it "
                f"({_spaces(iq)}; lines {r + 1} and {p + 1} have {ip}): indent it "
                "like its neighbours",
                indent=ip,
            )
        return _at(
            t,
            p,
            f"this line is indented more than the line above ({_spaces(ip)}; "
            f"line {q + 1} has {iq}, and has its value after ':' so nothing can go "
            "under it): indent it like the line above",
            indent=iq,
        )
    if ip < iq and ip not in t.levels(q):
        levels = sorted({n for n in t.levels(q) if n < iq})
        # Its path as if it had the nearest indentation (a slip of one space, usually).
        near = min(t.levels(q), key=lambda n: (abs(n - ip), -n))
        return _at(
            t,
            p,
            f"this line is indented less than the line above ({_spaces(ip)}; line "
            f"{q + 1} has {iq}) but does not line up with any block above it "
            f"(they start at {', '.join(map(str, levels))} spaces): line it up with "
            "the keys it belongs with",
            indent=near,
        )
    if ip == iq and t.is_item(q) and not t.is_item(p):
        return _missing_dash(t, p)
    if ip == iq and t.is_item(p) and not t.is_item(q) and "'-'" not in problem:
        return _at(
            t,
            p,
            "a list item ('- ...') among keys at the same indentation: a list goes "
            "under a key ending with ':', indented like this item",
        )
    return None


def _mapping_value(t: _Text, exc: yaml.MarkedYAMLError, p: int) -> SyntaxProblem | None:
    """'mapping values are not allowed': a ': ' where YAML expected plain text."""
    mark = exc.problem_mark
    col = mark.column if mark is not None else 0
    key = _KEY_RE.match(t.lines[p].strip().removeprefix("- "))
    if key is not None and t.indent(p) + len(key.group(0)) <= col:
        value = t.lines[p][t.lines[p].index(":") + 1 :].strip()
        return _at(
            t,
            p,
            "the value on this line contains ': ', which YAML reads as a new key: "
            f'put the whole value in quotes, e.g. "{value}"',
        )
    q = t.previous(p)
    if q is not None and t.key(q) is None and not t.is_item(q) and t.indent(q) == t.indent(p):
        return _no_colon(t, q)
    return _indentation(t, p, exc.problem or "")


def _other(t: _Text, exc: yaml.MarkedYAMLError, p: int) -> SyntaxProblem | None:
    problem = exc.problem or ""
    line = t.lines[p] if p < len(t.lines) else ""
    col = exc.problem_mark.column if exc.problem_mark is not None else 0
    char = line[col : col + 1]
    if problem.startswith("found undefined alias"):
        name = re.match(r"\*?([^\s,\]}]*)", line[col:])
        shown = name.group(1) if name else ""
        return _at(
            t,
            p,
            f"'*{shown}' means \"the value marked &{shown}\", and there is no such "
            "mark above: a value starting with '*' must be in quotes",
        )
    if exc.context == "expected a single document in the stream":
        return _at(t, p, "a line '---' starts a second document: this file holds one; remove it")
    if "unknown escape character" in problem:
        return _at(
            t,
            p,
            "inside double quotes a backslash starts an escape such as \\n: "
            "use single quotes for text with backslashes ('C:\\dir'), or double each one",
        )
    if "cannot start any token" in problem and char:
        return _at(t, p, f"a value cannot start with '{char}': put the value in quotes")
    if exc.context == "while scanning a simple key" and exc.context_mark is not None:
        i = exc.context_mark.line
        q = t.previous(i)
        if q is not None and t.is_item(q) and not t.is_item(i) and t.indent(q) == t.indent(i):
            return _missing_dash(t, i)
        return _no_colon(t, i)
    return None


def explain(text: str, exc: yaml.MarkedYAMLError) -> list[SyntaxProblem]:
    """Every problem that can be told apart (each tab-indented line), else the one
    the parser stopped at, in words and at the line to fix."""
    t = _Text(text)
    tabs = _tabs(t)
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return tabs or [SyntaxProblem(None, (), f"YAML syntax error: {exc}")]
    p = min(mark.line, max(len(t.lines) - 1, 0))
    if tabs:
        return tabs
    if t.lines and t.lines[p][mark.column : mark.column + 1] == "\t":
        return [
            SyntaxProblem(
                p + 1, (), "a tab character here: YAML needs spaces (use spaces, not tabs)"
            )
        ]
    if t.lines:
        problem = exc.problem or ""
        rules = [_open_quote(t, exc, p), _flow(t, exc, p), _other(t, exc, p)]
        if "mapping values are not allowed" in problem:
            rules.append(_mapping_value(t, exc, p))
        elif "expected" in problem:
            rules.append(_indentation(t, p, problem))
        found = next((r for r in rules if r is not None), None)
        if found is not None:
            return [found]
    words = " ".join(x for x in (exc.context, exc.problem) if x)
    return [
        SyntaxProblem(
            p + 1,
            (),
            f"YAML syntax error ({words}): check the indentation and "
            "the quotes of this line and of the line above",
        )
    ]
