"""YAML file -> AppConfig, with every problem reported as file:line: path: message.

The YAML is composed into nodes first (they carry line marks), then built into
plain data and validated; each pydantic error `loc` is walked back down the node
tree to find the line an ops person has to fix. All problems are collected.

Checks that need a higher layer (the schedule engine finds overrides outside any
shift) are handed in as `checks` by that layer: this one imports nothing above it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from astreinte_ari.config import yaml_syntax
from astreinte_ari.config.fieldnames import closest, valid_names
from astreinte_ari.config.model import AppConfig
from astreinte_ari.config.references import Loc, reference_issues

_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
# A check run on a configuration the models accepted: its problems, each at the YAML
# path the loader turns into a line (so they read like any other error).
ConfigCheck = Callable[[AppConfig], Iterable[tuple[Loc, str]]]
# pydantic-internal loc segments ("hours" groups the day keys of business_hours)
_VIRTUAL_SEGMENTS = frozenset({"hours"})


# libyaml's parser when present: ~10x faster on large rotas (hundreds of overrides).
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader with fewer YAML 1.1 surprises for hand-written files: `18:00`
    stays a string (not 1080, base 60), `+33612345678` stays a string (not an
    int without its +), and only true/false are booleans (`no` is Norway)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.bad_dates: list[tuple[yaml.Node, str]] = []


_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] not in (_INT_TAG, _BOOL_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(_INT_TAG, re.compile(r"^-?(?:0|[1-9][0-9_]*)$"), list("-0123456789"))

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip


def _date_problem(value: str, exc: ValueError) -> str:
    m = re.match(r"(\d{4})-(\d{1,2})-(\d{1,2})", value)
    if m:
        year, month, day = map(int, m.groups())
        if not 1 <= month <= 12:
            return f"invalid date '{value}': there is no month {month} (01 to 12)"
        days = calendar.monthrange(year, month)[1]
        if not 1 <= day <= days:
            return f"invalid date '{value}': {_MONTHS[month - 1]} {year} has {days} days"
    return f"invalid date '{value}' ({exc})"


def _timestamp(loader: _Loader, node: yaml.Node) -> Any:
    # An impossible date such as 2026-02-30 is noted and kept as text, so that
    # the rest of the file is still checked and the date is named with its field.
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)  # type: ignore[arg-type]
    except ValueError as exc:
        loader.bad_dates.append((node, _date_problem(str(node.value), exc)))
        return node.value


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    file: str
    line: int | None
    path: str  # e.g. lines."+33180000000".after_hours.hops[1].rota
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration is unusable; `issues` lists every problem found."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


def format_path(segments: Sequence[str | int]) -> str:
    out = ""
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            text = seg if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", seg) else f'"{seg}"'
            out += f".{text}" if out else text
    return out


def _find_key(node: yaml.Node, key: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    found = None
    for key_node, value_node in node.value:  # the last duplicate wins, as in construction
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(key):
            found = (key_node, value_node)
    return found


def _locate(root: yaml.Node, loc: Sequence[str | int]) -> tuple[int | None, list[str | int]]:
    """Deepest YAML line for a pydantic loc, plus the loc as the user wrote it."""
    node: yaml.Node | None = root
    line: int | None = None
    path: list[str | int] = []
    for seg in loc:
        if isinstance(seg, str) and "[" in seg:
            continue  # "[key]", "function-after[...]": pydantic internals
        hit = _find_key(node, seg) if node is not None else None
        if hit is None and seg in _VIRTUAL_SEGMENTS:
            continue
        path.append(seg)
        if hit is not None:
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(seg, int)
            and 0 <= seg < len(node.value)
        ):
            node = node.value[seg]
            line = node.start_mark.line + 1
        else:
            node = None  # past the YAML (e.g. a missing field): keep the parent's line
    return line, path


def _duplicate_keys(node: yaml.Node, path: list[str | int], file: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first_line:
                issues.append(
                    ConfigIssue(
                        file,
                        line,
                        format_path([*path, key]),
                        f"'{key}' is given twice (first on line {first_line[key]})",
                    )
                )
            first_line.setdefault(key, line)
            issues += _duplicate_keys(value_node, [*path, key], file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            issues += _duplicate_keys(item, [*path, i], file)
    return issues


def _node_paths(
    node: yaml.Node, path: list[str | int]
) -> Iterator[tuple[yaml.Node, list[str | int]]]:
    yield node, path
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            yield key_node, [*path, key]
            yield from _node_paths(value_node, [*path, key])
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _node_paths(item, [*path, i])


def _unknown_field(error: Any) -> tuple[str, str | None]:
    """(message, the valid name it probably meant) for a key no model has."""
    parent, name = tuple(error["loc"][:-1]), str(error["loc"][-1])
    choices = valid_names(AppConfig, parent)
    meant = closest(name, choices)
    if meant is not None:
        return f"unknown field '{name}': did you mean '{meant}'?", meant
    listed = ", ".join(choices) if choices else "none"
    return (
        f"unknown field '{name}' (check the spelling and the indentation; valid here: {listed})",
        None,
    )


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        return _unknown_field(error)[0]
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _validation_issues(
    exc: ValidationError, root: yaml.Node, file: str, already: set[str]
) -> list[ConfigIssue]:
    """One issue per pydantic error, except those already reported (an invalid
    date) and a 'missing' field whose misspelt key is reported as unknown."""
    errors = exc.errors(include_url=False)
    meant = {
        (tuple(e["loc"][:-1]), _unknown_field(e)[1])
        for e in errors
        if e["type"] == "extra_forbidden"
    }
    issues = []
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "missing" and (loc[:-1], loc[-1]) in meant:
            continue  # "peple: unknown field, did you mean 'people'?" says it all
        line, segs = _locate(root, loc)
        path = format_path(segs)
        if path in already:
            continue
        issues.append(ConfigIssue(file, line, path, _message(error)))
    return issues


def parse_yaml(text: str, file: str) -> tuple[Any, yaml.Node | None, list[ConfigIssue]]:
    """(data, root node, issues). A syntax error gives no root and issues in plain
    words; an impossible date gives the data (the date kept as text) and its issue."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.constructor.ConstructorError as exc:  # e.g. an unknown !tag
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        return None, None, [ConfigIssue(file, line, "", problem)]
    except yaml.MarkedYAMLError as exc:
        return (
            None,
            None,
            [
                ConfigIssue(file, p.line, format_path(p.path), p.message)
                for p in yaml_syntax.explain(text, exc)
            ],
        )
    except (yaml.YAMLError, ValueError) as exc:
        return None, None, [ConfigIssue(file, None, "", f"cannot read YAML: {exc}")]
    finally:
        loader.dispose()
    issues = []
    if loader.bad_dates and root is not None:
        paths = {id(node): path for node, path in _node_paths(root, [])}
        for node, message in loader.bad_dates:
            path = format_path(paths.get(id(node), []))
            issues.append(ConfigIssue(file, node.start_mark.line + 1, path, message))
    return data, root, issues


def load_config(path: str | Path, checks: Sequence[ConfigCheck] = ()) -> AppConfig:
    """Read, validate and freeze a configuration file; raise ConfigError listing
    every problem (with file, line and path) if it is not usable. `checks` run once
    the models accept the file (schedule.validate.load_checked_config passes the
    schedule's): a configuration is usable only if none finds a problem."""
    file = str(path)
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(file, None, "", f"cannot read the file: {exc}")]) from None
    data, root, issues = parse_yaml(text, file)
    bad_dates = {i.path for i in issues}  # reported already: not again by pydantic
    if root is None or data is None:
        raise ConfigError(issues or [ConfigIssue(file, None, "", "the file is empty")])
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(file, 1, "", "the top level must be `key: value` lines")])
    issues += _duplicate_keys(root, [], file)

    raw = {**data, "source_path": source.absolute()}
    config: AppConfig | None = None
    try:
        config = AppConfig.model_validate(raw, context={"references_checked": True})
    except ValidationError as exc:
        issues += _validation_issues(exc, root, file, bad_dates)
    for loc, message in reference_issues(data):
        line, segs = _locate(root, loc)
        issues.append(ConfigIssue(file, line, format_path(segs), message))
    if config is not None:
        for check in checks:
            for loc, message in check(config):
                line, segs = _locate(root, loc)
                issues.append(ConfigIssue(file, line, format_path(segs), message))

    if issues or config is None:
        unique = list(dict.fromkeys(issues))
        unique.sort(key=lambda i: (i.line is None, i.line or 0))
        raise ConfigError(unique)
    return config
