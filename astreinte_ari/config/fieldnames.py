"""The field names valid at a place of the configuration, for "did you mean ...?".

Walks the pydantic models along an error's location, the way the YAML nests
them, so that a misspelt key can be matched against the keys allowed there.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

_HIDDEN = frozenset({"source_path"})  # set by the loader, never written in the YAML


def _alternatives(annotation: Any) -> list[Any]:
    """The types an annotation may hold: Optional/Union members, Annotated's base."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _alternatives(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _alternatives(arg)]
    return [annotation]


def _below(annotation: Any, segment: str | int) -> list[Any]:
    """The annotations one location segment below `annotation`."""
    found: list[Any] = []
    for kind in _alternatives(annotation):
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found += [
                field.annotation
                for name, field in kind.model_fields.items()
                if segment in (name, field.alias)
            ]
            continue
        origin, args = get_origin(kind), get_args(kind)
        if origin in (tuple, list) and args and isinstance(segment, int):
            found.append(args[0])
        elif origin in (Mapping, dict) and len(args) == 2 and isinstance(segment, str):
            found.append(args[1])
    return found


def valid_names(root: type[BaseModel], parent: Sequence[str | int]) -> list[str]:
    """Keys the YAML may use inside the mapping at `parent` (a pydantic loc)."""
    current: list[Any] = [root]
    for segment in parent:
        if isinstance(segment, str) and "[" in segment:
            continue  # pydantic internals such as "function-after[...]"
        current = [below for annotation in current for below in _below(annotation, segment)]
    names: set[str] = set()
    for annotation in current:
        for kind in _alternatives(annotation):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                names |= {f.alias or n for n, f in kind.model_fields.items() if n not in _HIDDEN}
    return sorted(names)


def closest(name: str, choices: Sequence[str]) -> str | None:
    """The valid name a typo most likely meant, if one is close enough."""
    found = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not found:  # "peopel", "Timezone": letters swapped or case, not caught above
        lowered = {c.lower(): c for c in choices}
        found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
        found = [lowered[f] for f in found]
    return found[0] if found else None
